"""eBay API access for baysync: REST clients (beside this file) and the sandbox simulator (``sim``)."""
