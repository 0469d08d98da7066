"""Request limits shared by the HTTP server and the Lambda handler (both adapters agree)."""

MAX_INPUTS = 256  # texts per request
MAX_TEXT_CHARS = 20_000  # characters per text (the model truncates at max_length tokens anyway)
