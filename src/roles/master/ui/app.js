// Mini-Spark web UI: three pages (#/jobs, #/jobs/ID, #/workers) over the master's JSON API, kept
// live by polling. Plain JavaScript, no framework and nothing fetched from the internet; the DAG
// and the timeline are SVG drawn here. It only reads, except the Cancel button (DELETE /jobs/ID).
'use strict'
;(() => {
  const app = document.getElementById('app')
  const live = document.getElementById('live')
  const POLL_MS = 1000
  // The token is kept for this tab only (sessionStorage), under the key Swagger UI's page reads too.
  const TOKEN_KEY = 'minispark-token'
  const FINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED']
  const SOURCE_OPS = ['read_text', 'read_jsonl', 'read_csv']
  const WIDE_OPS = ['reduce_by_key', 'group_by_key', 'join', 'distinct', 'sort']
  const SINK_OPS = ['write_text', 'write_jsonl', 'collect', 'count']

  // ---- helpers ---------------------------------------------------------------------------

  const esc = s => String(s == null ? '' : s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
  const enc = encodeURIComponent
  const badge = st => `<span class="badge st-${esc(st)}">${esc(st)}</span>`
  const num = n => (n == null ? '' : Number(n).toLocaleString('en-US'))
  const ms = iso => (iso ? Date.parse(iso) : null)

  function bytes(n) {
    if (!n) return '0 B'
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
    let i = 0
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++ }
    return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${u[i]}`
  }

  function duration(msec) {
    if (msec == null || !isFinite(msec)) return ''
    if (msec < 1000) return `${Math.round(msec)} ms`
    const s = msec / 1000
    if (s < 60) return `${s.toFixed(1)} s`
    const m = Math.floor(s / 60)
    if (m < 60) return `${m} min ${Math.round(s % 60)} s`
    return `${Math.floor(m / 60)} h ${m % 60} min`
  }

  const clock = iso => (iso ? new Date(iso).toLocaleTimeString() : '')
  const when = iso => (iso ? new Date(iso).toLocaleString() : '')

  function bar(done, running, total, big) {
    const d = total > 0 ? (100 * done) / total : 0
    const r = total > 0 ? (100 * running) / total : 0
    return `<span class="bar${big ? ' big' : ''}"><i class="run" style="width:${Math.min(100, d + r)}%"></i><i style="width:${d}%"></i></span>`
  }

  // The master's clock, so that ages ("seen 1.2 s ago") do not depend on this machine's clock.
  let clockOffsetMs = 0
  const now = () => Date.now() + clockOffsetMs

  /** The body of a master route; with `withHeaders`, { body, headers } (paged lists say where they go on in headers). */
  async function api(path, method, withHeaders) {
    const headers = {}
    const token = sessionStorage.getItem(TOKEN_KEY)
    if (token) headers.authorization = `Bearer ${token}`
    let res
    try {
      res = await fetch(path, { method: method || 'GET', headers })
    } catch (e) {
      setLive(false, `the master does not answer: ${e.message}`)
      throw e
    }
    if (res.status === 401) { askToken(Boolean(token)); throw new Error('unauthorized') }
    const body = await res.json().catch(() => null)
    if (!res.ok) {
      const err = new Error((body && body.error && body.error.message) || `${method || 'GET'} ${path}: ${res.status}`)
      err.status = res.status
      throw err
    }
    setLive(true, `live: updated ${new Date().toLocaleTimeString()}`)
    return withHeaders ? { body, headers: res.headers } : body
  }

  /** One page of a paged list (GET /jobs, GET /jobs/ID/tasks) and where the list goes on. */
  async function apiPage(path) {
    const { body, headers } = await api(path, 'GET', true)
    return { items: body, next: headers.get('x-next-cursor'), prev: headers.get('x-prev-cursor'), total: Number(headers.get('x-total-count') || body.length) }
  }

  function setLive(ok, title) {
    live.className = `live ${ok ? 'ok' : 'down'}`
    live.title = title
  }

  function askToken(refused) {
    stopPage()
    if (refused) sessionStorage.removeItem(TOKEN_KEY)
    app.innerHTML = `<div class="card token"><h1>Token needed</h1>
      <p>${refused ? 'The master refused that token.' : 'This master requires its token (<code>Authorization: Bearer …</code>).'}
      It is kept for this tab only, and sent with every request the page and <a href="/swagger">Swagger UI</a> make.</p>
      <form id="token-form"><input id="token" type="password" autocomplete="off" placeholder="token"><button>Use</button></form></div>`
    document.getElementById('token-form').onsubmit = ev => {
      ev.preventDefault()
      sessionStorage.setItem(TOKEN_KEY, document.getElementById('token').value.trim())
      route()
    }
  }

  /** Calls fn now and POLL_MS after each end, until the page changes; returns a stop function. */
  function poll(fn, everyMs) {
    let stopped = false
    let timer = null
    const tick = async () => {
      try { await fn() } catch (e) { if (e.message !== 'unauthorized') console.warn(e) }
      if (!stopped) timer = setTimeout(tick, everyMs || POLL_MS)
    }
    tick()
    return () => { stopped = true; clearTimeout(timer) }
  }

  /** Sets innerHTML only when it changed: keeps tooltips, hover and text selection still. */
  function put(el, html) {
    if (el && el.__html !== html) { el.innerHTML = html; el.__html = html }
  }

  // ---- router ----------------------------------------------------------------------------

  let stops = []
  function stopPage() { for (const s of stops) s(); stops = [] }

  function route() {
    stopPage()
    const hash = location.hash.replace(/^#\/?/, '')
    const parts = hash.split('/').filter(Boolean).map(decodeURIComponent)
    for (const a of document.querySelectorAll('[data-nav]')) {
      a.classList.toggle('active', a.dataset.nav === (parts[0] || 'jobs'))
    }
    if (parts[0] === 'workers') workersPage()
    else if (parts[0] === 'jobs' && parts[1]) jobPage(parts[1])
    else jobsPage()
  }
  window.addEventListener('hashchange', route)

  async function syncClock() {
    const t0 = Date.now()
    const r = await api('/ui/clock')
    clockOffsetMs = r.now_ms - (t0 + Date.now()) / 2
  }

  // ---- jobs ------------------------------------------------------------------------------

  // The list is paged by the master (newest first): the page shown is fetched each second, never
  // the whole history. `cursor` null follows the newest jobs; Older/Newer move by the cursors the
  // master gives (X-Next-Cursor as `before`, X-Prev-Cursor as `after`).
  function jobsPage() {
    document.title = 'Jobs · Mini-Spark'
    const PAGE = 50
    let filter = ''
    let cursor = null
    let offset = 0
    let shown = { items: [], next: null, prev: null, total: 0 }
    let asked = 0   // a click and a poll may overlap: only the last request asked is shown
    app.innerHTML = `<div class="row"><h1>Jobs</h1>
      <div class="controls" style="margin-left:auto"><label>State <select id="job-filter">
        <option value="">all</option>${['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'].map(s => `<option>${s}</option>`).join('')}
      </select></label>
      <div class="pager"><button id="jobs-newer">‹ Newer</button><button id="jobs-older">Older ›</button></div></div></div>
      <p id="jobs-summary" class="muted"></p>
      <table id="jobs-table"><thead><tr><th>Job</th><th>Name</th><th>State</th><th>Submitted</th><th class="num">Duration</th><th>Progress</th></tr></thead>
      <tbody></tbody></table>`
    const body = app.querySelector('#jobs-table tbody')
    const summary = document.getElementById('jobs-summary')
    const newer = document.getElementById('jobs-newer')
    const older = document.getElementById('jobs-older')
    document.getElementById('job-filter').onchange = ev => { filter = ev.target.value; cursor = null; offset = 0; refresh() }
    older.onclick = () => { if (shown.next) { offset += shown.items.length; cursor = { before: shown.next }; refresh() } }
    newer.onclick = () => {
      if (!shown.prev) return
      offset = Math.max(0, offset - PAGE)
      cursor = offset === 0 ? null : { after: shown.prev }
      refresh()
    }
    const refresh = async () => {
      const q = new URLSearchParams({ limit: String(PAGE) })
      if (filter) q.set('state', filter)
      if (cursor && cursor.before) q.set('before', cursor.before)
      if (cursor && cursor.after) q.set('after', cursor.after)
      const mine = ++asked
      const page = await apiPage(`/jobs?${q}`)
      if (mine !== asked) return
      shown = page
      // Back at the newest page: follow new jobs again.
      if (cursor && cursor.after && !page.prev) { cursor = null; offset = 0 }
      const jobs = page.items
      newer.disabled = !page.prev
      older.disabled = !page.next
      put(summary, page.total === 0 && !filter ? 'No job yet: submit one with <code>minispark submit JOB.json</code> or the SDK.'
        : `${num(page.total)} ${filter ? filter.toLowerCase() + ' ' : ''}job${page.total === 1 ? '' : 's'}` +
          (jobs.length > 0 ? `, ${jobs.length === page.total ? 'all shown' : `showing ${num(offset + 1)}–${num(offset + jobs.length)}, newest first`}` : ''))
      put(body, jobs.map(j => {
        const start = ms(j.started_at)
        const end = ms(j.finished_at) || (FINAL.includes(j.state) ? start : now())
        return `<tr data-job="${esc(j.job_id)}">
          <td><a href="#/jobs/${enc(j.job_id)}">${esc(j.job_id)}</a></td><td>${esc(j.name)}</td><td>${badge(j.state)}</td>
          <td>${esc(when(j.submitted_at))}</td><td class="num">${start ? duration(end - start) : ''}</td>
          <td>${bar(j.progress, 0, 1)}<span class="pct">${Math.round(j.progress * 100)}%</span></td></tr>`
      }).join('') || `<tr><td colspan="6" class="muted">no ${esc(filter.toLowerCase())} job</td></tr>`)
    }
    stops.push(poll(refresh))
  }

  // ---- one job ---------------------------------------------------------------------------

  function jobPage(id) {
    document.title = `${id} · Mini-Spark`
    // The task table shows one page of attempts, filtered and paged by the master; the timeline
    // the last TIMELINE attempts. Both are read each second while the job runs, and once more
    // after it ended (or when the view changes): never every attempt each second.
    const view = { stage: '', state: '', cursor: null, offset: 0 }
    const PAGE = 100
    const TIMELINE = 1000
    let status = null
    let dag = null
    let tasksPage = { items: [], next: null, prev: null, total: 0 }
    let timeline = { items: [], total: 0 }
    let readFinal = ''   // the view last read after the job ended: nothing changes any more
    let asked = 0
    app.innerHTML = `<p><a href="#/jobs">← Jobs</a></p>
      <div id="job-head" class="card"></div>
      <div id="job-error"></div>
      <h2>DAG</h2>
      <div class="legend"><span><b class="k-source"></b>source</span><span><b class="k-narrow"></b>narrow</span><span><b class="k-wide"></b>wide (shuffle)</span>
        <span><b class="k-sink"></b>sink</span><span><b class="k-internal"></b>internal</span><span><i></i>in a stage</span><span><i class="dash"></i>shuffle</span><span><i class="bcast"></i>broadcast</span><span><i class="dot"></i>sort ranges</span><span><i class="wait"></i>waits for</span></div>
      <div id="dag" class="scroll"></div>
      <h2>Stages</h2>
      <table id="stages-table"><thead><tr><th>Stage</th><th>Nodes</th><th>Depends on</th><th>State</th><th>Tasks</th>
        <th class="num">Succeeded</th><th class="num">Running</th><th class="num">Pending</th><th class="num">Failed</th></tr></thead><tbody></tbody></table>
      <h2>Timeline <span class="muted" style="font-weight:400;font-size:12px">task attempts per worker</span></h2>
      <div id="timeline" class="scroll"></div>
      <h2>Tasks</h2>
      <div class="controls">
        <label>Stage <select id="task-stage"><option value="">all</option></select></label>
        <label>State <select id="task-state"><option value="">all</option>${['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'LOST', 'KILLED'].map(s => `<option>${s}</option>`).join('')}</select></label>
        <div class="pager"><span id="task-range"></span><button id="task-prev">‹ Prev</button><button id="task-next">Next ›</button></div>
      </div>
      <table id="tasks-table"><thead><tr><th>Task</th><th class="num">Attempt</th><th>Worker</th><th>State</th><th>Started</th><th class="num">Duration</th>
        <th class="num">Records in</th><th class="num">Records out</th><th class="num">Shuffle write</th><th class="num">Shuffle read</th><th class="num">Spilled</th><th>Error</th></tr></thead>
        <tbody></tbody></table>`
    const $ = sel => app.querySelector(sel)
    const moveTo = (cursor, offset) => { view.cursor = cursor; view.offset = Math.max(0, offset); loadTasks().then(renderTasks, e => console.warn(e)) }
    $('#task-stage').onchange = ev => { view.stage = ev.target.value; moveTo(null, 0) }
    $('#task-state').onchange = ev => { view.state = ev.target.value; moveTo(null, 0) }
    $('#task-prev').onclick = () => { if (tasksPage.prev) moveTo(view.offset - PAGE <= 0 ? null : { before: tasksPage.prev }, view.offset - PAGE) }
    $('#task-next').onclick = () => { if (tasksPage.next) moveTo({ after: tasksPage.next }, view.offset + tasksPage.items.length) }

    /** The page of attempts the view asks for (and, with `withTimeline`, the last ones for the timeline). */
    const loadTasks = async withTimeline => {
      const q = new URLSearchParams({ limit: String(PAGE) })
      if (view.stage !== '') q.set('stage', view.stage)
      if (view.state !== '') q.set('state', view.state)
      if (view.cursor && view.cursor.after) q.set('after', view.cursor.after)
      if (view.cursor && view.cursor.before) q.set('before', view.cursor.before)
      const key = q.toString()
      const final = status && FINAL.includes(status.state)
      if (final && readFinal === key && !withTimeline) return
      const mine = ++asked
      const page = await apiPage(`/jobs/${enc(id)}/tasks?${key}`)
      // Cursors past the end of the stages (S.0.0) give the last attempts.
      const last = withTimeline ? await apiPage(`/jobs/${enc(id)}/tasks?limit=${TIMELINE}&before=${status.stages.length}.0.0`) : null
      if (mine !== asked) return
      tasksPage = page
      if (last) timeline = last
      if (view.cursor && view.cursor.before && !page.prev) { view.cursor = null; view.offset = 0 }
      readFinal = final ? key : ''
    }

    const renderHead = () => {
      const s = status
      const start = ms(s.started_at)
      const end = ms(s.finished_at) || now()
      const t = s.stages.reduce((a, st) => ({ done: a.done + st.tasks.succeeded, run: a.run + st.tasks.running, total: a.total + st.tasks.total }), { done: 0, run: 0, total: 0 })
      put($('#job-head'), `<div class="row"><h1 style="margin:0">${esc(s.name)}</h1>${badge(s.state)}
          <span style="margin-left:auto">${FINAL.includes(s.state) ? `<a href="/jobs/${enc(s.job_id)}/result" target="_blank">result (JSON)</a>`
            : `<button id="cancel" class="danger">Cancel job</button>`}</span></div>
        <div class="kv"><div><span>id</span>${esc(s.job_id)}</div><div><span>submitted</span>${esc(when(s.submitted_at))}</div>
          <div><span>started</span>${esc(clock(s.started_at)) || '—'}</div><div><span>finished</span>${esc(clock(s.finished_at)) || '—'}</div>
          <div><span>duration</span><b id="job-duration">${start ? duration(end - start) : '—'}</b></div>
          <div><span>stages</span>${s.stages.length}</div><div><span>tasks</span>${num(t.done)} / ${num(t.total)}${t.run ? ` (+${t.run} running)` : ''}</div></div>
        <div style="margin-top:10px">${bar(t.done, t.run, t.total, true)}<span class="pct">${Math.round(s.progress * 100)}%</span></div>`)
      const cancel = document.getElementById('cancel')
      if (cancel) {
        cancel.onclick = async () => {
          if (!confirm(`Cancel job ${s.job_id}?`)) return
          cancel.disabled = true
          try { await api(`/jobs/${enc(s.job_id)}`, 'DELETE') } catch (e) { alert(e.message) }
        }
      }
      const e = s.error
      put($('#job-error'), e ? `<div class="errbox"><b>${esc(s.state)}:</b> ${esc(e.message)}
        <div class="kv">${e.node_id ? `<div><span>node</span>${esc(e.node_id)}</div>` : ''}${e.task_id ? `<div><span>task</span>${esc(e.task_id)}</div>` : ''}</div>
        ${e.record != null ? `<div style="margin-top:6px" class="muted">record</div><pre>${esc(e.record)}</pre>` : ''}</div>` : '')
    }

    const renderStages = () => {
      put($('#stages-table tbody'), status.stages.map(st => `<tr data-stage="${st.stage_id}">
        <td>${st.stage_id}</td><td>${esc(st.node_ids.join(' → '))}</td><td>${esc(st.depends_on.join(', ')) || '—'}</td><td>${badge(st.state)}</td>
        <td>${bar(st.tasks.succeeded, st.tasks.running, st.tasks.total)}<span class="pct">${st.tasks.succeeded}/${st.tasks.total}</span></td>
        <td class="num">${num(st.tasks.succeeded)}</td><td class="num">${num(st.tasks.running)}</td><td class="num">${num(st.tasks.pending)}</td>
        <td class="num">${num(st.tasks.failed)}</td></tr>`).join('') || '<tr><td colspan="9" class="muted">no stage</td></tr>')
      const sel = $('#task-stage')
      const options = `<option value="">all</option>` + status.stages.map(st => `<option value="${st.stage_id}"${String(st.stage_id) === view.stage ? ' selected' : ''}>${st.stage_id}</option>`).join('')
      if (sel.__html !== options && document.activeElement !== sel) { sel.innerHTML = options; sel.__html = options }
    }

    const renderTasks = () => {
      const page = tasksPage.items
      const from = view.offset
      $('#task-range').textContent = page.length === 0 ? `${num(tasksPage.total)} attempts`
        : `${num(from + 1)}–${num(from + page.length)} of ${num(tasksPage.total)} attempts`
      $('#task-prev').disabled = !tasksPage.prev
      $('#task-next').disabled = !tasksPage.next
      put($('#tasks-table tbody'), page.map(t => {
        const start = ms(t.started_at)
        const end = ms(t.finished_at) || (t.state === 'RUNNING' ? now() : null)
        return `<tr data-task="${esc(t.task_id)}" data-attempt="${t.attempt}">
          <td title="${esc(t.task_id)}">${t.stage_id}.${t.partition}</td><td class="num">${t.attempt}</td>
          <td>${t.worker_id ? `<a href="#/workers">${esc(t.worker_id)}</a>` : '—'}</td><td>${badge(t.state)}</td>
          <td>${esc(clock(t.started_at))}</td><td class="num">${start && end ? duration(end - start) : ''}</td>
          <td class="num">${num(t.records_in)}</td><td class="num">${num(t.records_out)}</td>
          <td class="num">${bytes(t.shuffle_bytes_written)}</td><td class="num">${bytes(t.shuffle_bytes_read)}</td><td class="num">${bytes(t.spilled_bytes)}</td>
          <td class="err" title="${esc(t.error)}">${esc(t.error && t.error.length > 160 ? t.error.slice(0, 160) + '…' : t.error)}</td></tr>`
      }).join('') || `<tr><td colspan="12" class="muted">no task attempt${view.stage || view.state ? ' matches' : ' yet'}</td></tr>`)
    }

    const refresh = async () => {
      let s
      try {
        s = await api(`/jobs/${enc(id)}`)
      } catch (e) {
        if (e.status === 404) { app.innerHTML = `<p><a href="#/jobs">← Jobs</a></p><div class="errbox">${esc(e.message)}</div>`; stopPage() }
        throw e
      }
      const stagesChanged = !status || status.stages.length !== s.stages.length
      status = s
      if (!dag || stagesChanged) dag = await api(`/jobs/${enc(id)}/dag`)
      // After the end, one last read of the page and the timeline; nothing changes any more.
      if (readFinal === '') await loadTasks(true)
      renderHead()
      renderStages()
      put($('#dag'), drawDag(dag, status))
      put($('#timeline'), drawTimeline(timeline, status, $('#timeline').clientWidth || 1000))
      renderTasks()
    }
    stops.push(poll(refresh))
  }

  // ---- the DAG: one box per stage, its nodes inside, shuffles between boxes -----------------

  function kindOf(op) {
    if (SOURCE_OPS.includes(op)) return 'source'
    if (WIDE_OPS.includes(op)) return 'wide'
    if (SINK_OPS.includes(op)) return 'sink'
    if (op === 'sample') return 'internal'
    return 'narrow'
  }

  const EDGE_TITLES = { shuffle: 'shuffle', broadcast: 'broadcast (the small side, whole, to every task)', bounds: 'sampled ranges', dependency: 'waits for' }

  /** The path through dagre's points, rounded at each bend. */
  function curve(points) {
    if (points.length < 2) return ''
    let d = `M${points[0].x},${points[0].y}`
    for (let i = 1; i < points.length - 1; i++) {
      const p = points[i], q = points[i + 1]
      d += ` Q${p.x},${p.y} ${(p.x + q.x) / 2},${(p.y + q.y) / 2}`
    }
    const z = points[points.length - 1]
    return `${d} L${z.x},${z.y}`
  }

  // Laid out by dagre (bundled ahead of this script): each stage is a cluster holding a header
  // (title, state, progress) and its nodes; every edge is a dagre edge, so the layers follow the
  // dependencies and dagre orders each layer to cross as few edges as it can. Top to bottom: a
  // deep job grows the page, and a wide one is scaled to the page's width (never cut off).
  function drawDag(dag, status) {
    if (!dag || dag.stages.length === 0) return '<p class="muted">no plan for this job</p>'
    const NW = 226, NH = 34, HH = 36
    const info = new Map(dag.nodes.map(n => [n.id, n]))
    const counts = new Map(status.stages.map(s => [s.stage_id, s]))
    const g = new dagre.graphlib.Graph({ compound: true, multigraph: true })
    g.setGraph({ rankdir: 'TB', align: 'UL', nodesep: 28, ranksep: 26, edgesep: 14, marginx: 8, marginy: 8 })
    g.setDefaultEdgeLabel(() => ({}))
    const key = (stage, id) => `n ${stage} ${id}`
    const head = stage => `h ${stage}`
    for (const s of dag.stages) {
      const cluster = `s ${s.stage_id}`
      g.setNode(cluster, {})
      g.setNode(head(s.stage_id), { width: NW, height: HH })
      g.setParent(head(s.stage_id), cluster)
      for (const n of s.nodes) { g.setNode(key(s.stage_id, n.id), { width: NW, height: NH }); g.setParent(key(s.stage_id, n.id), cluster) }
    }
    const fed = new Set(dag.edges.filter(e => e.kind === 'narrow').map(e => key(e.to_stage, e.to)))
    const feeds = new Set(dag.edges.filter(e => e.kind === 'narrow').map(e => key(e.from_stage, e.from)))
    for (const s of dag.stages) {
      // the header above the nodes that start the stage
      for (const n of s.nodes) if (!fed.has(key(s.stage_id, n.id))) g.setEdge(head(s.stage_id), key(s.stage_id, n.id), { weight: 8 }, 'head')
      // a stage starts below every stage it waits for
      for (const d of s.depends_on) {
        const ds = dag.stages.find(x => x.stage_id === d)
        if (!ds) continue
        for (const n of ds.nodes) if (!feeds.has(key(d, n.id))) g.setEdge(key(d, n.id), head(s.stage_id), { weight: 0 }, `after ${d}`)
      }
    }
    dag.edges.forEach((e, i) => {
      const v = key(e.from_stage, e.from), w = key(e.to_stage, e.to)
      if (g.hasNode(v) && g.hasNode(w)) g.setEdge(v, w, { weight: e.kind === 'narrow' ? 4 : 1 }, `e${i}`)
    })
    dagre.layout(g)
    const box = id => { const n = g.node(id); return { x: n.x - n.width / 2, y: n.y - n.height / 2, w: n.width, h: n.height } }
    const width = Math.ceil(g.graph().width), height = Math.ceil(g.graph().height)

    const boxSvg = dag.stages.map(s => {
      const c = counts.get(s.stage_id)
      const st = c ? c.state : 'WAITING'
      const t = c ? c.tasks : { total: 0, succeeded: 0, running: 0, pending: 0, failed: 0 }
      const b = box(`s ${s.stage_id}`), hb = box(head(s.stage_id))
      const bw = hb.w
      const dw = t.total ? (bw * t.succeeded) / t.total : 0
      const rw = t.total ? (bw * t.running) / t.total : 0
      const title = `Stage ${s.stage_id}${s.sample_of ? ' (sample)' : ''}`
      const nodes = s.nodes.map(n => {
        const p = box(key(s.stage_id, n.id))
        const d = info.get(n.id)
        const tip = `${n.id} (${n.op})${d && d.detail ? `\n${d.detail}` : ''}${d && d.stage_ids.length > 1 ? `\nin stages ${d.stage_ids.join(', ')}` : ''}`
        const label = n.id.length > 28 ? n.id.slice(0, 27) + '…' : n.id
        return `<g class="node k-${kindOf(n.op)}" data-node="${esc(n.id)}"><title>${esc(tip)}</title>
          <rect x="${p.x}" y="${p.y}" width="${p.w}" height="${p.h}" rx="6"/>
          <text class="id" x="${p.x + 10}" y="${p.y + 14}">${esc(label)}</text><text class="op" x="${p.x + 10}" y="${p.y + 27}">${esc(n.op)}</text></g>`
      }).join('')
      return `<g class="stage s-${esc(st)}" data-stage="${s.stage_id}"><title>${esc(`${title}: ${st}, ${t.succeeded}/${t.total} tasks${s.sample_of ? `\nsamples the keys of sort ${s.sample_of} to cut its ranges` : ''}`)}</title>
        <rect class="box" x="${b.x}" y="${b.y}" width="${b.w}" height="${b.h}" rx="8"/>
        <text class="title" x="${hb.x}" y="${hb.y + 16}">${esc(title)}</text>
        <text class="count" x="${hb.x + hb.w}" y="${hb.y + 16}" text-anchor="end">${esc(st)} ${t.succeeded}/${t.total}${t.running ? ` (+${t.running})` : ''}</text>
        <rect class="track" x="${hb.x}" y="${hb.y + 24}" width="${bw}" height="6" rx="3"/>
        <rect class="run" x="${hb.x}" y="${hb.y + 24}" width="${dw + rw}" height="6" rx="3"/>
        <rect class="done" x="${hb.x}" y="${hb.y + 24}" width="${dw}" height="6" rx="3"/>${nodes}</g>`
    }).join('')
    const edgeSvg = dag.edges.map((e, i) => {
      const v = key(e.from_stage, e.from), w = key(e.to_stage, e.to)
      const le = g.hasNode(v) && g.hasNode(w) ? g.edge(v, w, `e${i}`) : undefined
      if (!le || !le.points) return ''
      const tip = e.kind === 'narrow' ? '' : `<title>${esc(EDGE_TITLES[e.kind] || e.kind)}: ${esc(e.from)} (stage ${e.from_stage}) → ${esc(e.to)} (stage ${e.to_stage})</title>`
      return `<path class="edge ${esc(e.kind)}" data-from="${e.from_stage}" data-to="${e.to_stage}" marker-end="url(#arrow)" d="${curve(le.points)}">${tip}</path>`
    }).join('')
    return `<svg class="dag" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7482"/></marker></defs>
      ${boxSvg}${edgeSvg}</svg>`
  }

  // ---- the timeline: a lane per worker, a bar per task attempt -----------------------------

  /** `last`: the last attempts of the job (a page of GET /jobs/ID/tasks) and how many there are in all. */
  function drawTimeline(last, status, width) {
    const shown = last.items.filter(t => t.started_at && t.worker_id)
    if (shown.length === 0) return '<p class="muted">no task attempt has started yet</p>'
    const t0 = Math.min(...shown.map(t => ms(t.started_at)))
    const endOf = t => ms(t.finished_at) || (FINAL.includes(status.state) ? ms(status.finished_at) || ms(t.started_at) : now())
    const t1 = Math.max(t0 + 1, ...shown.map(endOf))
    const LABEL = 120, ROW = 16, LANEPAD = 6, AXIS = 22
    const plot = Math.max(300, width - LABEL - 30)
    const x = t => LABEL + ((t - t0) / (t1 - t0)) * plot
    // Attempts that overlap on one worker (several slots) go on sub-rows of its lane.
    const lanes = new Map()
    for (const t of shown.slice().sort((a, b) => ms(a.started_at) - ms(b.started_at))) {
      const lane = lanes.get(t.worker_id) || { rows: [], bars: [] }
      lanes.set(t.worker_id, lane)
      const s = ms(t.started_at), e = endOf(t)
      let r = lane.rows.findIndex(end => end <= s)
      if (r < 0) { r = lane.rows.length; lane.rows.push(e) } else lane.rows[r] = e
      lane.bars.push({ t, s, e, r })
    }
    let y = AXIS
    let svg = ''
    for (const [worker, lane] of [...lanes].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const h = lane.rows.length * ROW + LANEPAD
      svg += `<g class="lane" data-worker="${esc(worker)}"><line class="grid" x1="0" x2="${LABEL + plot}" y1="${y + h}" y2="${y + h}"/>
        <text class="lane" x="4" y="${y + h / 2 + 4}">${esc(worker.length > 18 ? worker.slice(0, 17) + '…' : worker)}</text>`
      for (const b of lane.bars) {
        const bx = x(b.s), bw = Math.max(2, x(b.e) - bx), by = y + LANEPAD / 2 + b.r * ROW
        const label = `${b.t.stage_id}.${b.t.partition}${b.t.attempt > 0 ? `#${b.t.attempt}` : ''}`
        svg += `<rect class="a a-${esc(b.t.state)}" x="${bx}" y="${by}" width="${bw}" height="${ROW - 3}"><title>${esc(`task ${b.t.task_id} attempt ${b.t.attempt}: ${b.t.state}, ${duration(b.e - b.s)}${b.t.error ? `\n${b.t.error}` : ''}`)}</title></rect>`
        if (bw > 34) svg += `<text class="al" x="${bx + 3}" y="${by + ROW - 6}">${esc(label)}</text>`
      }
      svg += '</g>'
      y += h
    }
    // Axis: about 8 ticks at a round step.
    const span = (t1 - t0) / 1000
    const step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].find(s => span / s <= 8) || 7200
    let axis = ''
    for (let s = 0; s <= span + 1e-9; s += step) {
      const tx = x(t0 + s * 1000)
      axis += `<line class="grid" x1="${tx}" x2="${tx}" y1="${AXIS - 4}" y2="${y}"/><text class="tick" x="${tx}" y="12" text-anchor="middle">${s < 10 && step < 1 ? s.toFixed(1) : Math.round(s)} s</text>`
    }
    const note = last.total > last.items.length ? `<p class="muted">the last ${num(last.items.length)} of ${num(last.total)} attempts</p>` : ''
    return `${note}<svg class="timeline" width="${LABEL + plot + 20}" height="${y + 4}" xmlns="http://www.w3.org/2000/svg">${axis}${svg}</svg>`
  }

  // ---- workers ---------------------------------------------------------------------------

  function workersPage() {
    document.title = 'Workers · Mini-Spark'
    app.innerHTML = `<h1>Workers</h1><p id="workers-summary" class="muted"></p>
      <table id="workers-table"><thead><tr><th>Worker</th><th>Address</th><th>Status</th><th class="num">Last heartbeat</th>
        <th class="num">Memory</th><th>Active tasks</th></tr></thead><tbody></tbody></table>`
    const body = app.querySelector('#workers-table tbody')
    const refresh = async () => {
      const workers = await api('/workers')
      workers.sort((a, b) => (a.status === 'DEAD') - (b.status === 'DEAD') || (a.worker_id < b.worker_id ? -1 : 1))
      const alive = workers.filter(w => w.status !== 'DEAD')
      put(document.getElementById('workers-summary'), workers.length === 0 ? 'No worker has registered: start one with <code>minispark worker --master URL</code>.'
        : `${workers.length} worker${workers.length === 1 ? '' : 's'}: ${alive.length} alive, ${workers.length - alive.length} dead · ` +
          `${alive.reduce((n, w) => n + w.slots, 0)} task slots, ${alive.reduce((n, w) => n + w.active_tasks, 0)} tasks active`)
      put(body, workers.map(w => {
        const age = Math.max(0, now() - w.last_heartbeat)
        return `<tr data-worker="${esc(w.worker_id)}" data-status="${esc(w.status)}" class="${w.status === 'DEAD' ? 'dead' : ''}">
          <td>${esc(w.worker_id)}</td><td>${esc(w.address)}</td><td>${badge(w.status)}</td>
          <td class="num" title="${esc(new Date(w.last_heartbeat).toLocaleString())}">${(age / 1000).toFixed(1)} s ago</td>
          <td class="num">${num(w.mem_usage_mb)} MiB</td>
          <td>${bar(w.active_tasks, 0, w.slots)}<span class="pct">${w.active_tasks}/${w.slots}</span></td></tr>`
      }).join(''))
    }
    stops.push(poll(refresh))
    stops.push(poll(syncClock, 30_000))
  }

  syncClock().then(route, e => { if (e.message !== 'unauthorized') route() })
})()
