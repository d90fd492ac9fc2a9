//! An axum service behind the Tracehound layer, with a toy detector

fn main() {}
