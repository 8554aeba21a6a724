"""Cases: the owner, lifecycle, SLA and history of an alert (or an incident), one implementation for both."""
