//! [`EnvServer`]: one of this project's environments behind AgentGym's environment-server
//! protocol. Each `/create` makes an instance from the factory; calls on different instances run
//! in parallel (one handler thread per connection in flight, up to `threads`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::protocol::{AvailableActions, ResetQuery, StepQuery, StepResponse, TaskInfo};
use crate::environment::{EnvError, EnvFactory, Environment};
use crate::task::Task;

/// One served instance.
struct Slot {
    env: Box<dyn Environment>,
    task: Option<Task>,
    observation: String,
}

struct State {
    factory: Arc<dyn EnvFactory>,
    tasks: Vec<Task>,
    infos: Vec<TaskInfo>,
    next: AtomicU64,
    envs: Mutex<HashMap<u64, Arc<Mutex<Slot>>>>,
    /// Set by [`ServerHandle::crash`]: every call fails with 503 until [`ServerHandle::recover`].
    down: std::sync::atomic::AtomicBool,
    /// Calls answered 503 while down.
    refused: AtomicU64,
}

/// An HTTP server for one environment (see [`super`] for the protocol).
pub struct EnvServer {
    server: Arc<tiny_http::Server>,
    state: Arc<State>,
}

/// A running server: its address, and a way to stop it (stopping drops every instance, as a
/// killed server process would).
pub struct ServerHandle {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    state: Arc<State>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Fails as a crashed server process does, without closing the port: every instance is
    /// dropped and every call answers 503 until [`ServerHandle::recover`] (a restarted process,
    /// with no instances).
    /// Returns the number of instances lost.
    pub fn crash(&self) -> usize {
        self.state.down.store(true, Ordering::SeqCst);
        self.state.envs.lock().map(|mut envs| envs.drain().count()).unwrap_or(0)
    }

    /// Calls answered 503 while crashed.
    pub fn refused(&self) -> u64 {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Answers again after [`ServerHandle::crash`], with no instances.
    pub fn recover(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    /// Stops accepting, waits for the handler threads, and drops every instance.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[derive(Serialize)]
struct Detail {
    detail: String,
}

type Answer = (u16, String);

fn json<T: Serialize>(value: &T) -> Answer {
    (200, serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
}

fn error(status: u16, detail: impl Into<String>) -> Answer {
    (status, serde_json::to_string(&Detail { detail: detail.into() }).unwrap_or_default())
}

fn env_error(e: &EnvError) -> Answer {
    error(500, e.to_string())
}

impl EnvServer {
    /// Binds `addr` (`127.0.0.1:0` picks a free port) for environments made by `factory`.
    pub fn bind(addr: &str, factory: impl EnvFactory) -> Result<Self, EnvError> {
        let factory: Arc<dyn EnvFactory> = Arc::new(factory);
        let probe = factory.make(0)?;
        let tasks = probe.tasks();
        let infos = tasks.iter().map(|t| TaskInfo { task: t.clone(), max_steps: probe.max_steps(t) }).collect();
        drop(probe);
        let server = tiny_http::Server::http(addr).map_err(|e| EnvError::Other(format!("cannot listen on {addr}: {e}")))?;
        let state = State { factory, tasks, infos, next: AtomicU64::new(0), envs: Mutex::new(HashMap::new()), down: Default::default(), refused: AtomicU64::new(0) };
        Ok(EnvServer { server: Arc::new(server), state: Arc::new(state) })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.server.server_addr().to_ip().unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves on `threads` handler threads in the background.
    pub fn spawn(self, threads: usize) -> ServerHandle {
        let addr = self.addr();
        let handles = (0..threads.max(1))
            .map(|_| {
                let (server, state) = (self.server.clone(), self.state.clone());
                std::thread::spawn(move || serve(&server, &state))
            })
            .collect();
        ServerHandle { addr, server: self.server, state: self.state, threads: handles }
    }

    /// Serves on `threads` handler threads until the process ends.
    pub fn run(self, threads: usize) {
        let mut handle = self.spawn(threads);
        for t in handle.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve(server: &tiny_http::Server, state: &State) {
    while let Ok(mut request) = server.recv() {
        let mut body = String::new();
        let answer = match request.as_reader().read_to_string(&mut body) {
            Ok(_) => handle(state, request.method(), request.url(), &body),
            Err(e) => error(400, e.to_string()),
        };
        let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).expect("a valid header");
        let response = tiny_http::Response::from_string(answer.1).with_status_code(answer.0).with_header(header);
        let _ = request.respond(response);
    }
}

fn query_env_idx(url: &str) -> Option<u64> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|kv| kv.strip_prefix("env_idx=")).and_then(|v| v.parse().ok())
}

fn slot(state: &State, idx: u64) -> Result<Arc<Mutex<Slot>>, Answer> {
    let envs = state.envs.lock().map_err(|_| error(500, "server state poisoned"))?;
    envs.get(&idx).cloned().ok_or_else(|| error(404, format!("no environment {idx}: create one first (POST /create)")))
}

fn parse<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, Answer> {
    serde_json::from_str(body).map_err(|e| error(422, format!("malformed body: {e}")))
}

fn handle(state: &State, method: &tiny_http::Method, url: &str, body: &str) -> Answer {
    use tiny_http::Method::{Get, Post};
    let path = url.split('?').next().unwrap_or("");
    if state.down.load(Ordering::SeqCst) {
        state.refused.fetch_add(1, Ordering::SeqCst);
        return error(503, "the server is down");
    }
    let result = (|| -> Result<Answer, Answer> {
        Ok(match (method, path) {
            (Get, "/") => json(&"ok"),
            (Get, "/tasks") => json(&state.infos),
            (Get, "/list_envs") => {
                let envs = state.envs.lock().map_err(|_| error(500, "server state poisoned"))?;
                let mut ids: Vec<u64> = envs.keys().copied().collect();
                ids.sort_unstable();
                json(&ids)
            }
            (Post, "/create") => {
                let idx = state.next.fetch_add(1, Ordering::Relaxed);
                let env = state.factory.make(idx as usize).map_err(|e| env_error(&e))?;
                let slot = Slot { env, task: None, observation: String::new() };
                state.envs.lock().map_err(|_| error(500, "server state poisoned"))?.insert(idx, Arc::new(Mutex::new(slot)));
                json(&idx)
            }
            (Post, "/reset") => {
                let q: ResetQuery = parse(body)?;
                let index = q.session_id.unwrap_or(0);
                let task = state.tasks.iter().find(|t| t.index == index).cloned().ok_or_else(|| error(404, format!("no task with session_id {index}")))?;
                let slot = slot(state, q.env_idx)?;
                let mut s = slot.lock().map_err(|_| error(500, "environment poisoned"))?;
                let observation = s.env.reset(&task, q.seed.unwrap_or(0)).map_err(|e| env_error(&e))?;
                s.task = Some(task);
                s.observation = observation.clone();
                json(&(observation, serde_json::Value::Null))
            }
            (Post, "/step") => {
                let q: StepQuery = parse(body)?;
                let slot = slot(state, q.env_idx)?;
                let mut s = slot.lock().map_err(|_| error(500, "environment poisoned"))?;
                if s.task.is_none() {
                    return Err(error(422, "reset the environment before stepping it (POST /reset)"));
                }
                let r = s.env.step(&q.action).map_err(|e| env_error(&e))?;
                s.observation = r.observation.clone();
                json(&StepResponse { state: r.observation, reward: r.reward, done: r.done, info: None })
            }
            (Get, "/observation") => {
                let slot = slot(state, query_env_idx(url).ok_or_else(|| error(422, "missing ?env_idx="))?)?;
                let s = slot.lock().map_err(|_| error(500, "environment poisoned"))?;
                json(&s.observation)
            }
            (Get, "/available_actions") => {
                let slot = slot(state, query_env_idx(url).ok_or_else(|| error(422, "missing ?env_idx="))?)?;
                let s = slot.lock().map_err(|_| error(500, "environment poisoned"))?;
                json(&AvailableActions::from_valid(s.env.valid_actions()))
            }
            (Get, "/instruction_text") => {
                let slot = slot(state, query_env_idx(url).ok_or_else(|| error(422, "missing ?env_idx="))?)?;
                let s = slot.lock().map_err(|_| error(500, "environment poisoned"))?;
                json(&s.task.as_ref().map(|t| t.instruction.clone()).unwrap_or_default())
            }
            (Post, "/close") => {
                #[derive(serde::Deserialize)]
                struct Close {
                    env_idx: u64,
                }
                let q: Close = parse(body)?;
                let closed = state.envs.lock().map_err(|_| error(500, "server state poisoned"))?.remove(&q.env_idx).is_some();
                json(&serde_json::json!({ "closed": closed }))
            }
            _ => error(404, format!("no route {path}")),
        })
    })();
    result.unwrap_or_else(|e| e)
}
