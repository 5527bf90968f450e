# Kept across sysupgrade: the device key and the outbox are the device's
# identity and its unsent records.
/etc/edge-agent/
