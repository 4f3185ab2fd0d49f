//! The local AWS test harness: moto server, the Lambda Runtime API, CloudTrail event builders.
#![allow(dead_code)]

pub mod aws;
pub mod events;
pub mod moto;
pub mod runtime;
