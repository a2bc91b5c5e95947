"""Local fake platforms: small HTTP servers on 127.0.0.1 that answer with each platform's real
response shapes, record what they received, and can be told to fail. Used by tests, benchmarks and
the credential-free demo."""
