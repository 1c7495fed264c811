"""The integration service: finance / ERP / WeCom connectors, signed webhooks in and out, scheduled sync with lag alerts, partner credentials."""
