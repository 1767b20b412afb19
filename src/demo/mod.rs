//! `m365-posture demo`: graph-sim in-process on loopback with a changing tenant, and the real
//! daemon scanning it.

pub mod scenario;
