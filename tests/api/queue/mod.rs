//! `/api/queue`: the task API, and what survives a killed process.

mod crash;
mod tasks;
mod webhooks;
