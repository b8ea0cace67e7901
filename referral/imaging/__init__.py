"""Upload inspection: recognise image files by content and refuse unsafe or broken ones.

The two error classes live here, rather than in ``inspect``, so that ``dicom``
and ``inspect`` can both raise them without importing each other. Import them
from ``referral.imaging.inspect`` (same objects) or from here.
"""


class UnsupportedImageType(Exception):
    """The bytes are not one of the accepted formats; the app answers 415."""


class DamagedImage(Exception):
    """The bytes claim a supported format but cannot be trusted; the app answers 422."""


__all__ = ["DamagedImage", "UnsupportedImageType"]
