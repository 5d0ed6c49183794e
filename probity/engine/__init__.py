"""The biometric engine: decode, detect, align, embed, assess quality.

Each stage is a plain function taking the previous stage's output; ``FaceEngine`` strings
them together. dlib objects never leave this package: callers see numpy arrays and domain
values. Models load lazily on first use, never at import time.
"""
