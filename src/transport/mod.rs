//! Heartbeat transports: UDP (unicast, broadcast, multicast) and serial lines.
