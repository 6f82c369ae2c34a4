"""Workflows declared once in Python: steps (`steps`), their contexts (`context`), the ASL
renderer (`asl`) and the dispatcher Lambda tasks use (`dispatch`)."""
