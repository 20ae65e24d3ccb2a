//! The shared loopback harness: see `screening_gateway::testing`.
#![allow(unused_imports)]

pub use screening_gateway::testing::{
    serve, start_agent, LocalHub as Harness, OrderEndpoint, RunningAgent,
};
