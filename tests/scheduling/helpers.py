def main(response) -> bytes:
    """The page body without per-request tokens (CSRF, nonce) in the header."""
    return response.content.split(b'<main id="main"')[1]
