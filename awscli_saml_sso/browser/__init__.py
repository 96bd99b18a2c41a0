"""How the browser signs in: capture proxy, CA, browser discovery and lifetimes, form filling."""
