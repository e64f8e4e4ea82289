"""The tutorial's helpers: the CRM's models and operations, accounts, and the lesson's advice."""
