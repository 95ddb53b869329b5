// The album's work queue: photos wait here and go to the classifier a few at a time, enough to keep every worker
// busy (the next photo decodes while Python works on the current one) without sending a thousand files at once.
// It measures photos per second over the recent photos and estimates the time left. Cancel drops what is waiting;
// the few photos already in a worker finish and are kept, and count in the cancelled run. Photos added after a
// cancel or a clear start a new run: its counts are its own photos only (a cleared run's photos count nowhere).

const WINDOW = 24; // photos the rate is measured over: recent enough to follow the machine's load, long enough to be steady

export class Queue {
  #waiting = [];
  #inFlight = 0; // every run's photos in a worker: what the concurrency bounds
  #runInFlight = 0; // the current run's
  #run = 0;
  #finishTimes = [];
  #process;
  #onProgress;
  #cancelled = false;
  #idle = []; // resolvers of idle()

  // process(item) -> Promise of true when the photo was classified, false when it failed (never rejects);
  // onProgress(state) after every change of the current run.
  constructor({ process, concurrency, onProgress }) {
    this.#process = process;
    this.concurrency = concurrency;
    this.#onProgress = onProgress;
    this.done = 0;
    this.failed = 0;
    this.total = 0;
    this.startedAt = null;
  }

  // Resolves once nothing is waiting or in a worker (at once if nothing is).
  idle() {
    return new Promise((resolve) => {
      this.#idle.push(resolve);
      this.#wakeIdle();
    });
  }

  #wakeIdle() {
    if (this.#inFlight || this.#waiting.length) return;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  // Whether the current run has photos waiting or in a worker.
  get running() {
    return this.#runInFlight > 0 || this.#waiting.length > 0;
  }

  add(items) {
    if (!this.running || this.#cancelled) this.#newRun();
    this.#waiting.push(...items.map((item) => ({ item, run: this.#run })));
    this.total += items.length;
    this.#pump();
    this.#report();
  }

  cancel() {
    if (!this.running) return;
    this.#cancelled = true;
    this.total -= this.#waiting.length;
    this.#waiting = [];
    this.#report();
  }

  // Drops the run: what is waiting is not started, what is in a worker finishes uncounted and unreported.
  clear() {
    this.#waiting = [];
    this.#newRun();
  }

  #newRun() {
    this.#run += 1;
    this.#runInFlight = 0;
    this.#cancelled = false;
    this.done = 0;
    this.failed = 0;
    this.total = 0;
    this.startedAt = null;
    this.#finishTimes = [];
  }

  #pump() {
    while (this.#inFlight < this.concurrency && this.#waiting.length) {
      const { item, run } = this.#waiting.shift();
      this.#inFlight += 1;
      this.#runInFlight += 1;
      this.startedAt ??= performance.now();
      this.#process(item).catch(() => false).then((ok) => {
        this.#inFlight -= 1;
        if (run === this.#run) {
          this.#runInFlight -= 1;
          this.done += 1;
          if (ok === false) this.failed += 1;
          this.#finishTimes.push(performance.now());
          if (this.#finishTimes.length > WINDOW + 1) this.#finishTimes.shift();
        }
        this.#pump();
        if (run === this.#run) this.#report();
        this.#wakeIdle();
      });
    }
  }

  // Photos per second over the last WINDOW photos (from the run's start until there are that many).
  rate() {
    const times = this.#finishTimes;
    if (!times.length || this.startedAt === null) return 0;
    const full = times.length > WINDOW;
    const from = full ? times[0] : this.startedAt;
    const count = full ? times.length - 1 : times.length;
    const seconds = (times[times.length - 1] - from) / 1000;
    return seconds > 0 ? count / seconds : 0;
  }

  state() {
    const rate = this.rate();
    const left = this.total - this.done;
    return {
      done: this.done, failed: this.failed, total: this.total, running: this.running, cancelled: this.#cancelled,
      rate, secondsLeft: rate > 0 ? left / rate : null,
    };
  }

  #report() {
    this.#onProgress?.(this.state());
  }
}
