//! tracehoundd's gRPC contract (proto/tracehound.proto): generated types and a client
