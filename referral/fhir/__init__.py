"""HL7 FHIR R4 views of the stored records, as plain dicts: no Flask, no FHIR library at run time."""

from referral.fhir.bundle import case_resources, referral_bundle

__all__ = ["case_resources", "referral_bundle"]
