"""DICOM networking: the listener that imaging software uses for the worklist and to send images."""
