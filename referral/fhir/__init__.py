"""HL7 FHIR R4 views of the stored records, as plain dicts: no Flask, no FHIR library at run time."""

from referral.fhir.bundle import referral_bundle

__all__ = ["referral_bundle"]
