"""placeholder"""
VALIDATION_CASES = []
