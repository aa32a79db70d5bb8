//! What a run measured, as text for people and one JSON line for scripts; and the
//! process's own CPU time, read from `/proc/self/stat`.

use crate::driver::Tally;
use std::fmt::Write as _;
use std::time::Duration;

/// CPU time this process has used so far (all threads, live and exited).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    /// Reads utime and stime of `/proc/<pid>/stat` (`self` for this process).
    pub fn of(pid: &str, ticks_per_sec: u64) -> Option<CpuTime> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces and parentheses; fields after
        // the last ')' start at field 3 (state).
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(11); // fields 3..=13
        let ticks = |f: Option<&str>| f?.parse::<u64>().ok();
        let (user, system) = (ticks(fields.next())?, ticks(fields.next())?);
        let to_time = |t: u64| Duration::from_nanos(t * 1_000_000_000 / ticks_per_sec.max(1));
        Some(CpuTime {
            user: to_time(user),
            system: to_time(system),
        })
    }

    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    pub fn total(self) -> Duration {
        self.user + self.system
    }
}

/// Clock ticks per second of `/proc` times (`getconf CLK_TCK`; Linux fixes it at 100
/// on every common architecture, which is the fallback).
pub fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The run's settings, echoed in the report.
pub struct Settings {
    pub server: String,
    pub protocol: &'static str,
    pub conns: usize,
    pub pipeline: usize,
    pub threads: usize,
    pub ratio: String,
    pub keys: u64,
    pub key_pattern: String,
    pub value_size: String,
    /// With `--tls`: handshakes done at connect, and the time connecting took.
    pub handshakes: Option<(usize, Duration)>,
}

/// A finished phase: what the threads counted, and the CPU it cost this process.
pub struct Phase {
    pub tally: Tally,
    pub cpu: CpuTime,
}

impl Phase {
    /// The load threads' tallies merged, with this process's CPU time since `before`.
    pub fn merged(tallies: &[Tally], before: CpuTime, ticks: u64) -> Phase {
        let cpu = CpuTime::of("self", ticks).unwrap_or_default().since(before);
        let mut tally = Tally::new();
        for t in tallies {
            tally.merge(t);
        }
        Phase { tally, cpu }
    }

    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.tally.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.tally.completed as f64 / secs
        } else {
            0.0
        }
    }

    /// Microseconds of this process's CPU per answered request.
    pub fn cpu_us_per_request(&self) -> f64 {
        if self.tally.completed == 0 {
            return 0.0;
        }
        self.cpu.total().as_secs_f64() * 1e6 / self.tally.completed as f64
    }

    /// Latency at quantile `q` in microseconds.
    pub fn latency_us(&self, q: f64) -> f64 {
        self.tally.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_us(&self) -> f64 {
        self.tally.latency.max() as f64 / 1000.0
    }

    pub fn mean_us(&self) -> f64 {
        self.tally.latency.mean() / 1000.0
    }
}

/// The human-readable report.
pub fn text(settings: &Settings, prefill: Option<&Phase>, measured: Option<&Phase>) -> String {
    let s = settings;
    let mut out = format!(
        "rc-load {} {}: {} conns x pipeline {}, {} thread(s), set:get {}, {} keys {}, values {} B\n",
        s.server,
        s.protocol,
        s.conns,
        s.pipeline,
        s.threads,
        s.ratio,
        s.keys,
        s.key_pattern,
        s.value_size
    );
    if let Some((count, took)) = s.handshakes {
        let _ = writeln!(
            out,
            "tls       {count} handshakes in {:.3} s ({:.0}/s, one after another)",
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64().max(1e-9)
        );
    }
    if let Some(p) = prefill {
        let _ = writeln!(
            out,
            "prefill   {} sets in {:.2} s ({:.0} ops/s), {} errors",
            p.tally.completed,
            p.tally.elapsed.as_secs_f64(),
            p.ops_per_sec(),
            p.tally.errors()
        );
    }
    if let Some(m) = measured {
        let t = &m.tally;
        let _ = writeln!(
            out,
            "measured  {} requests in {:.2} s: {:.0} ops/s\n  gets {} (hits {}, misses {})  sets {}  errors {}",
            t.completed,
            t.elapsed.as_secs_f64(),
            m.ops_per_sec(),
            t.gets,
            t.hits,
            t.misses,
            t.sets,
            t.errors()
        );
        if t.timed_out > 0 {
            let _ = writeln!(
                out,
                "  lost: {} UDP requests unanswered in time ({:.3} % of those sent)",
                t.timed_out,
                100.0 * t.timed_out as f64 / (t.completed + t.timed_out).max(1) as f64
            );
        }
        let _ = writeln!(
            out,
            "  latency us: p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}",
            m.latency_us(0.5),
            m.latency_us(0.99),
            m.latency_us(0.999),
            m.max_us(),
            m.mean_us()
        );
        let _ = writeln!(
            out,
            "  load CPU: {:.2} us per request (user {:.2} s + system {:.2} s)",
            m.cpu_us_per_request(),
            m.cpu.user.as_secs_f64(),
            m.cpu.system.as_secs_f64()
        );
    }
    out
}

/// The result as one JSON object on one line.
pub fn json(settings: &Settings, prefill: Option<&Phase>, measured: Option<&Phase>) -> String {
    let s = settings;
    let mut out = String::from("{\"tool\":\"rc-load\"");
    let mut str_field = |k: &str, v: &str| {
        let _ = write!(out, ",\"{k}\":\"{}\"", json_escape(v));
    };
    str_field("server", &s.server);
    str_field("protocol", s.protocol);
    str_field("ratio", &s.ratio);
    str_field("key_pattern", &s.key_pattern);
    str_field("value_size", &s.value_size);
    let mut nums: Vec<(&str, f64)> = vec![
        ("conns", s.conns as f64),
        ("pipeline", s.pipeline as f64),
        ("threads", s.threads as f64),
        ("keys", s.keys as f64),
    ];
    if let Some((count, took)) = s.handshakes {
        nums.push(("tls_handshakes", count as f64));
        nums.push(("tls_handshake_secs", took.as_secs_f64()));
        nums.push((
            "tls_handshakes_per_sec",
            count as f64 / took.as_secs_f64().max(1e-9),
        ));
    }
    if let Some(p) = prefill {
        nums.push(("prefill_ops", p.tally.completed as f64));
        nums.push(("prefill_secs", p.tally.elapsed.as_secs_f64()));
        nums.push(("prefill_errors", p.tally.errors() as f64));
    }
    let empty = Phase {
        tally: Tally::new(),
        cpu: CpuTime::default(),
    };
    let m = measured.unwrap_or(&empty);
    let t = &m.tally;
    nums.extend([
        ("ops", t.completed as f64),
        ("secs", t.elapsed.as_secs_f64()),
        ("ops_per_sec", m.ops_per_sec()),
        ("gets", t.gets as f64),
        ("sets", t.sets as f64),
        ("hits", t.hits as f64),
        ("misses", t.misses as f64),
        ("timed_out", t.timed_out as f64),
        (
            "errors",
            t.errors() as f64 + prefill.map_or(0.0, |p| p.tally.errors() as f64),
        ),
        ("p50_us", m.latency_us(0.5)),
        ("p99_us", m.latency_us(0.99)),
        ("p999_us", m.latency_us(0.999)),
        ("max_us", m.max_us()),
        ("mean_us", m.mean_us()),
        ("load_cpu_user_secs", m.cpu.user.as_secs_f64()),
        ("load_cpu_system_secs", m.cpu.system.as_secs_f64()),
        ("load_cpu_us_per_request", m.cpu_us_per_request()),
    ]);
    for (k, v) in nums {
        if v.fract() == 0.0 && v.abs() < 9e15 {
            let _ = write!(out, ",\"{k}\":{}", v as i64);
        } else {
            let _ = write!(out, ",\"{k}\":{v:.3}");
        }
    }
    out.push('}');
    out
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_is_readable() {
        let ticks = clock_ticks_per_sec();
        assert!(ticks > 0);
        assert!(CpuTime::of("self", ticks).is_some());
    }

    #[test]
    fn json_is_one_line_with_numbers() {
        let settings = Settings {
            server: "127.0.0.1:1".into(),
            protocol: "text",
            conns: 2,
            pipeline: 1,
            threads: 1,
            ratio: "1:10".into(),
            keys: 10,
            key_pattern: "uniform".into(),
            value_size: "32".into(),
            handshakes: None,
        };
        let line = json(&settings, None, None);
        assert!(!line.contains('\n'));
        assert!(line.starts_with("{\"tool\":\"rc-load\""));
        assert!(line.contains("\"conns\":2,"));
        assert!(line.contains("\"errors\":0,"));
        assert_eq!(json_escape("a\"b\n"), "a\\\"b\\u000a");
    }
}
