//! Tracehound as a tower Layer for axum and hyper services
