//! `/api/queue`: the task API, and what survives a killed process.

mod crash;
mod schedules;
mod tasks;
mod webhooks;
