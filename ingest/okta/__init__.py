"""The Okta HTTP client: transport with a whole-request deadline, rate-limit pacing, retries,
API-token and OAuth 2.0 (with DPoP) auth, and parsing of System Log pages."""
