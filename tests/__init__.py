import pytest

# The helpers of tests/support/ assert like tests do; have pytest explain their failures too. This runs before
# tests/conftest.py imports any of them.
pytest.register_assert_rewrite("tests.support")
