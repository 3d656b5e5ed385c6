//! Environments across hosts, over AgentGym's environment-server protocol (HTTP + JSON, the
//! `agentenv-*` servers of WooooDyy/AgentGym): [`EnvServer`] serves any of this project's
//! environments, [`AgentGymEnv`] drives any such server (this project's, or AgentGym's own
//! WebShop server with the real product data) as an [`Environment`](crate::Environment).
//!
//! The protocol, as AgentGym's WebShop server speaks it:
//!
//! | call | body / query | answer |
//! |---|---|---|
//! | `GET /` | | `"ok"` |
//! | `POST /create` | | the new environment's `env_idx` (an integer) |
//! | `POST /reset` | `{"env_idx", "session_id"}` | `[observation, null]` |
//! | `POST /step` | `{"env_idx", "action"}` | `{"state", "reward", "done", "info"}` |
//! | `GET /observation` | `?env_idx=` | the current observation |
//! | `GET /available_actions` | `?env_idx=` | `{"has_search_bar", "clickables"}` |
//! | `GET /instruction_text` | `?env_idx=` | the task's instruction |
//! | `POST /close` | `{"env_idx"}` | `{"closed"}` |
//! | `GET /list_envs` | | the open `env_idx`s |
//!
//! This project's server adds, without changing any of the above: `"seed"` in `/reset` (the
//! environment's reset seed, for exact replay), `"valid_actions"` in `/available_actions` (the
//! environment's own list), and `GET /tasks` (every task with its split and step limit), which
//! the client reads when it is not given a task list. Errors answer `{"detail": ...}` with 404
//! (unknown `env_idx`), 422 (a malformed body) or 500 (the environment failed), as FastAPI does.

mod client;
mod protocol;
mod server;

pub use client::{AgentGymConfig, AgentGymEnv, AgentGymFactory};
pub use protocol::{AvailableActions, ResetQuery, StepQuery, StepResponse, TaskInfo};
pub use server::{EnvServer, ServerHandle};
