//! Ferry signaling server library.
