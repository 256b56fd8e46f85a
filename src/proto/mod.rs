//! Wire protocol: the binary heartbeat message and its authentication (sans-IO).
