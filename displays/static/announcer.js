// Spoken calls through one <audio> element: one at a time, in call order, none cut off.
//
// Browsers refuse play() without a user gesture (hall screens run Chromium with
// --autoplay-policy=no-user-gesture-required and never meet this); a refused play keeps its call
// at the head of the queue until unblock() is called from a click.

const STUCK_MARGIN_MS = 5000;
const STUCK_UNKNOWN_MS = 30000;

export class Announcer {
  /**
   * hooks: onStart(call) when a call's announcement begins, onEnd(call) when it ended (or could
   * not play), onBlocked(bool) when the browser refuses or allows sound, isRecent(call) whether a
   * call is still worth saying when its turn comes.
   */
  constructor(audio, hooks) {
    this.audio = audio;
    this.hooks = hooks;
    this.queue = [];
    this.current = null;
    this.blocked = false;
    this.stuck = null;
    audio.addEventListener("ended", () => this.finish());
    // A WAV that cannot be fetched or decoded: say the next one rather than stop the queue.
    audio.addEventListener("error", () => this.finish());
    audio.addEventListener("playing", () => {
      clearTimeout(this.stuck);
      const ms = Number.isFinite(audio.duration) ? audio.duration * 1000 + STUCK_MARGIN_MS : STUCK_UNKNOWN_MS;
      this.stuck = setTimeout(() => this.finish(), ms);
    });
  }

  get busy() {
    return this.current !== null;
  }

  enqueue(call) {
    this.queue.push(call);
    this.pump();
  }

  unblock() {
    this.blocked = false;
    this.hooks.onBlocked(false);
    this.pump(); // inside the click handler: the gesture lets play() through
  }

  pump() {
    if (this.current !== null || this.blocked) return;
    while (this.queue.length && !this.hooks.isRecent(this.queue[0])) this.queue.shift();
    const call = this.queue[0];
    if (!call) return;
    this.current = call;
    this.audio.src = call.audio;
    this.hooks.onStart(call);
    this.audio.play().catch((error) => {
      if (this.current !== call) return;
      if (error.name === "NotAllowedError") {
        this.current = null;
        this.blocked = true;
        this.hooks.onEnd(call);
        this.hooks.onBlocked(true);
      } else if (error.name !== "AbortError") {
        this.finish();
      }
    });
  }

  finish() {
    const call = this.current;
    if (call === null) return;
    clearTimeout(this.stuck);
    this.queue.shift();
    this.current = null;
    this.hooks.onEnd(call);
    this.pump();
  }
}
