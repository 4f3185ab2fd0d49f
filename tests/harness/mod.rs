//! The local AWS test harness: moto server, the Lambda Runtime API, CloudTrail event builders.
#![allow(dead_code)]

pub mod aws;
pub mod events;
pub mod faults;
pub mod http;
pub mod moto;
pub mod runtime;
pub mod stage;
