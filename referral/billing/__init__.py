"""The claims engine: a pure package (no Flask, no database) that turns the facts of a visit into
claims, one per billing organization, with the rule behind every line."""
