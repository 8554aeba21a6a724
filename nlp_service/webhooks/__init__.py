"""Alert webhooks: subscriptions, Standard Webhooks signing, durable outbox delivery."""
