"""The website chat widget's HTTP side: visitor endpoints (origin-checked, CORS) and the agent's typing."""
