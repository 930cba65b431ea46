//! Timing: an operation runs back to back in timed windows and the figure is the median of
//! the windows' rates; slow operations (key-pair generation) are timed one by one instead.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::report::Figure;

/// How long and how often to measure, for a full or a `--quick` run.
pub struct Timing {
    pub quick: bool,
    /// Timed windows per workload; the figure is their median.
    pub windows: usize,
    pub window: Duration,
    /// Token objects of the find / new-process workloads.
    pub objects: usize,
    /// New processes started against the object store; the figures are their medians.
    pub reopen_runs: usize,
}

impl Timing {
    pub fn new(quick: bool) -> Self {
        if quick {
            Timing { quick, windows: 3, window: Duration::from_millis(100), objects: 1_000, reopen_runs: 2 }
        } else {
            Timing { quick, windows: 5, window: Duration::from_millis(500), objects: 10_000, reopen_runs: 5 }
        }
    }

    /// The untimed warm-up before the windows.
    pub fn warm_up(&self) -> Duration {
        self.window / 4
    }

    /// How long a [`Pace::Sustained`] workload runs, untimed, before its windows: long enough
    /// for what a short run never meets (a trail written faster than the disk takes it).
    pub fn sustain(&self) -> Duration {
        if self.quick { Duration::from_secs(1) } else { Duration::from_secs(8) }
    }
}

/// One call of the measured operation; `Err` carries the PKCS#11 return code's name.
pub type Op<'a> = Box<dyn FnMut() -> Result<(), String> + 'a>;
/// An operation that can move to a thread of its own.
pub type SendOp = Box<dyn FnMut() -> Result<(), String> + Send>;

/// A workload ready to run: the operation, and untimed work between windows (destroying the
/// objects a window created, so that the store does not grow during the measurement).
pub struct Bench<'a> {
    pub op: Op<'a>,
    pub between: Option<Box<dyn FnMut() + 'a>>,
}

impl<'a> Bench<'a> {
    pub fn new(op: impl FnMut() -> Result<(), String> + 'a) -> Self {
        Bench { op: Box::new(op), between: None }
    }

    pub fn between(mut self, f: impl FnMut() + 'a) -> Self {
        self.between = Some(Box::new(f));
        self
    }

    fn tidy(&mut self) {
        if let Some(f) = &mut self.between {
            f();
        }
    }
}

/// How a workload is timed.
#[derive(Clone, Copy)]
pub enum Pace {
    /// Back to back in windows; the median window rate.
    Windows,
    /// The same, after [`Timing::sustain`] of it untimed.
    Sustained,
    /// This many single operations timed one by one (0: skipped); the median time.
    Iterations { full: usize, quick: usize },
}

impl Pace {
    pub fn skipped(self, t: &Timing) -> bool {
        matches!(self, Pace::Iterations { quick: 0, .. } if t.quick)
            || matches!(self, Pace::Iterations { full: 0, .. } if !t.quick)
    }
}

/// Measures `b`. The first call is a probe: if it fails, the module lacks the workload.
pub fn measure(b: &mut Bench, t: &Timing, pace: Pace) -> Figure {
    if pace.skipped(t) {
        return Figure::Skipped;
    }
    let start = Instant::now();
    if let Err(e) = (b.op)() {
        return Figure::Unsupported(e);
    }
    let probe = start.elapsed();
    b.tidy();
    let result = match pace {
        Pace::Iterations { full, quick } => {
            let n = if t.quick { quick } else { full };
            let mut times = vec![probe.as_secs_f64()];
            while times.len() < n {
                let start = Instant::now();
                if let Err(e) = (b.op)() {
                    return Figure::Failed(e);
                }
                times.push(start.elapsed().as_secs_f64());
                b.tidy();
            }
            Ok(1.0 / median(times))
        }
        Pace::Windows | Pace::Sustained => (|| {
            let lead = if matches!(pace, Pace::Sustained) { t.sustain() } else { t.warm_up() };
            run_for(&mut b.op, lead)?;
            b.tidy();
            let mut rates = Vec::with_capacity(t.windows);
            for _ in 0..t.windows {
                rates.push(run_for(&mut b.op, t.window)?);
                b.tidy();
            }
            Ok(median(rates))
        })(),
    };
    result.map_or_else(Figure::Failed, Figure::Rate)
}

/// Runs `op` back to back for at least `window` (and at least once); returns ops per second.
pub fn run_for(op: &mut dyn FnMut() -> Result<(), String>, window: Duration) -> Result<f64, String> {
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        op()?;
        n += 1;
        let elapsed = start.elapsed();
        if elapsed >= window {
            return Ok(n as f64 / elapsed.as_secs_f64());
        }
    }
}

/// Runs each op on a thread of its own, all threads in lockstep windows (a barrier starts
/// each window); returns the median over windows of the summed rate.
pub fn measure_threads(ops: Vec<SendOp>, t: &Timing) -> Result<f64, String> {
    let barrier = Barrier::new(ops.len());
    let barrier = &barrier;
    let per_thread: Vec<Result<Vec<f64>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = ops
            .into_iter()
            .map(|mut op| {
                s.spawn(move || {
                    let mut rates = Vec::with_capacity(t.windows);
                    let mut failed = None;
                    // Window 0 is the warm-up. A thread that failed keeps meeting the barrier
                    // so that the others do not wait for it forever.
                    for w in 0..=t.windows {
                        barrier.wait();
                        if failed.is_some() {
                            continue;
                        }
                        match run_for(&mut op, if w == 0 { t.warm_up() } else { t.window }) {
                            Ok(r) if w > 0 => rates.push(r),
                            Ok(_) => {}
                            Err(e) => failed = Some(e),
                        }
                    }
                    failed.map_or(Ok(rates), Err)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("thread panicked".into()))).collect()
    });
    let per_thread = per_thread.into_iter().collect::<Result<Vec<_>, _>>()?;
    let sums = (0..t.windows).map(|w| per_thread.iter().map(|rates| rates[w]).sum()).collect();
    Ok(median(sums))
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
