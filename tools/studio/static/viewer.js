// A 3D skeleton viewer on a 2D canvas, written for the LGTM studio (no library, nothing fetched).
// y is up, metres; the floor grid lies at the lowest joint height of the motion. Drag to orbit, wheel to zoom.
"use strict";

const PART_COLOURS = {
  head: "#ffd166", left_arm: "#06d6a0", right_arm: "#ef476f",
  torso: "#f4f1de", left_leg: "#118ab2", right_leg: "#c77dff",
};

// All viewers share one animation loop; its counters are read by the tests and the benchmark.
const StudioViewers = {
  list: [],
  ticks: 0,          // animation-frame callbacks since the loop started
  drawn: 0,          // canvas frames drawn
  startedAt: null,
  running: false,
  add(viewer) {
    this.list.push(viewer);
    if (!this.running) {
      this.running = true;
      this.last = performance.now();
      this.startedAt = this.last;
      requestAnimationFrame((t) => this.tick(t));
    }
  },
  remove(viewer) { this.list = this.list.filter((v) => v !== viewer); },
  tick(now) {
    const dt = Math.min(0.25, Math.max(0, (now - this.last) / 1000));
    this.last = now;
    this.ticks += 1;
    for (const v of this.list) {
      if (!v.canvas.isConnected) continue;
      if (v.step(dt)) { v.draw(); this.drawn += 1; }
    }
    requestAnimationFrame((t) => this.tick(t));
  },
};
window.StudioViewers = StudioViewers;

class MotionViewer {
  // skeleton: {parents, part_of}; motion: {frames, fps, joints: [T][22][3]}; onFrame(frame) after each new frame.
  constructor(canvas, skeleton, motion, onFrame) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.parents = skeleton.parents;
    this.partOf = skeleton.part_of;
    this.frames = motion.frames;
    this.fps = motion.fps || 20;
    this.onFrame = onFrame || (() => {});
    const J = this.parents.length;
    this.joints = new Float32Array(this.frames * J * 3);
    let k = 0;
    for (const frame of motion.joints) for (const joint of frame) for (const c of joint) this.joints[k++] = c;
    this.J = J;
    this.time = 0;          // in frames (fractional)
    this.frame = -1;
    this.playing = true;
    this.speed = 1;
    this.yaw = 0.6; this.pitch = 0.35;
    this.fit();
    this.dirty = true;
    this.bindCamera();
    StudioViewers.add(this);
  }

  fit() {
    let minY = Infinity, minX = Infinity, maxX = -Infinity, minZ = Infinity, maxZ = -Infinity, maxY = -Infinity;
    for (let i = 0; i < this.joints.length; i += 3) {
      const x = this.joints[i], y = this.joints[i + 1], z = this.joints[i + 2];
      minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y);
      minZ = Math.min(minZ, z); maxZ = Math.max(maxZ, z);
    }
    this.floor = Number.isFinite(minY) ? minY : 0;
    this.target = [(minX + maxX) / 2, this.floor + 0.9, (minZ + maxZ) / 2];
        this.distance = Math.max(3.0, 1.2 * Math.max(maxX - minX, maxZ - minZ) + 2.6);
  }

  bindCamera() {
    const c = this.canvas;
    let drag = null;
    c.addEventListener("pointerdown", (e) => { drag = [e.clientX, e.clientY]; c.setPointerCapture(e.pointerId); });
    c.addEventListener("pointerup", () => { drag = null; });
    c.addEventListener("pointermove", (e) => {
      if (!drag) return;
      this.yaw -= (e.clientX - drag[0]) * 0.01;
      this.pitch = Math.max(-0.1, Math.min(1.4, this.pitch + (e.clientY - drag[1]) * 0.01));
      drag = [e.clientX, e.clientY];
      this.dirty = true;
    });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.distance = Math.max(1, Math.min(40, this.distance * Math.exp(e.deltaY * 0.001)));
      this.dirty = true;
    }, { passive: false });
  }

  setPlaying(on) { this.playing = on; this.dirty = true; }
  setSpeed(s) { this.speed = s; }
  seek(frame) { this.time = Math.max(0, Math.min(this.frames - 1, frame)); this.dirty = true; }
  zoom(factor) { this.distance = Math.max(1, Math.min(40, this.distance * factor)); this.dirty = true; }

  // Advance the clock; true when something must be drawn.
  step(dt) {
    if (this.playing && this.frames > 1) {
      this.time = (this.time + dt * this.fps * this.speed) % this.frames;
      this.dirty = true;
    }
    const frame = Math.floor(this.time);
    if (frame !== this.frame) { this.frame = frame; this.dirty = true; this.onFrame(frame); }
    const d = this.dirty;
    this.dirty = false;
    return d;
  }

  camera() {
    const cp = Math.cos(this.pitch), t = this.target;
    const eye = [t[0] + this.distance * cp * Math.sin(this.yaw), t[1] + this.distance * Math.sin(this.pitch),
                 t[2] + this.distance * cp * Math.cos(this.yaw)];
    const f = norm([t[0] - eye[0], t[1] - eye[1], t[2] - eye[2]]);
    const r = norm(cross(f, [0, 1, 0]));
    const u = cross(r, f);
    return { eye, f, r, u };
  }

  draw() {
    const c = this.canvas, ctx = this.ctx;
    const w = c.width, h = c.height;
    ctx.fillStyle = "#0b0d10";
    ctx.fillRect(0, 0, w, h);
    const cam = this.camera();
    const focal = h / (2 * Math.tan((45 * Math.PI / 180) / 2));
    const project = (p) => {
      const d = [p[0] - cam.eye[0], p[1] - cam.eye[1], p[2] - cam.eye[2]];
      const z = dot(d, cam.f);
      if (z < 0.05) return null;
      return [w / 2 + focal * dot(d, cam.r) / z, h / 2 - focal * dot(d, cam.u) / z, z];
    };
    // floor grid: 0.5 m cells over 12 m around the target, drawn in short segments so lines behind the eye clip
    ctx.lineWidth = 1;
    const cx = Math.round(this.target[0] * 2) / 2, cz = Math.round(this.target[2] * 2) / 2, y = this.floor;
    for (let i = -12; i <= 12; i++) {
      ctx.strokeStyle = i === 0 ? "#3a4250" : "#232831";
      for (const axis of [0, 1]) {
        ctx.beginPath();
        for (let j = -12; j < 12; j++) {
          const a = axis ? [cx + i / 2, y, cz + j / 2] : [cx + j / 2, y, cz + i / 2];
          const b = axis ? [cx + i / 2, y, cz + (j + 1) / 2] : [cx + (j + 1) / 2, y, cz + i / 2];
          const pa = project(a), pb = project(b);
          if (pa && pb) { ctx.moveTo(pa[0], pa[1]); ctx.lineTo(pb[0], pb[1]); }
        }
        ctx.stroke();
      }
    }
    const base = Math.max(0, this.frame) * this.J * 3;
    const joint = (j) => [this.joints[base + 3 * j], this.joints[base + 3 * j + 1], this.joints[base + 3 * j + 2]];
    // shadow of the root on the floor
    const root = joint(0);
    const shadow = project([root[0], y, root[2]]);
    if (shadow) {
      ctx.fillStyle = "rgba(255,255,255,0.08)";
      ctx.beginPath(); ctx.ellipse(shadow[0], shadow[1], 900 / shadow[2] / 4, 300 / shadow[2] / 4, 0, 0, 2 * Math.PI);
      ctx.fill();
    }
    ctx.lineCap = "round";
    const points = [];
    for (let j = 0; j < this.J; j++) points.push(project(joint(j)));
    for (let j = 1; j < this.J; j++) {
      const a = points[this.parents[j]], b = points[j];
      if (!a || !b) continue;
      ctx.strokeStyle = PART_COLOURS[this.partOf[j]] || "#fff";
      ctx.lineWidth = Math.max(2, 45 / b[2]);
      ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
    }
    for (let j = 0; j < this.J; j++) {
      const p = points[j];
      if (!p) continue;
      ctx.fillStyle = PART_COLOURS[this.partOf[j]] || "#fff";
      ctx.beginPath(); ctx.arc(p[0], p[1], Math.max(1.5, 30 / p[2]), 0, 2 * Math.PI); ctx.fill();
    }
  }

  destroy() { StudioViewers.remove(this); }
}

function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
function norm(a) { const n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; }

window.MotionViewer = MotionViewer;
window.PART_COLOURS = PART_COLOURS;
