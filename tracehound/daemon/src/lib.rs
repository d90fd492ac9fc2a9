//! tracehoundd: Tracehound as a daemon over gRPC on a Unix socket
