// The web UI: one HTML page, its script and its stylesheet, embedded in the binary as text, so it
// works with no internet. The page reads the JSON API (jobs, tasks, DAG, workers) by itself.
import { Elysia } from 'elysia'
import indexHtml from '../ui/index.html' with { type: 'text' }
import appJs from '../ui/app.js' with { type: 'text' }
import styleCss from '../ui/style.css' with { type: 'text' }
// dagre lays out the job's DAG in the browser; its browser build (one function defining `dagre`,
// MIT licensed) is served ahead of the page's script, in the same asset. Imported by path: the
// package's exports do not list the file, and it must be inside the binary.
import dagreJs from '../../../../node_modules/@dagrejs/dagre/dist/dagre.min.js' with { type: 'text' }
import type { Clock } from '../../clock'

// dagre in a function of its own, so that only `dagre` joins the page's names; the whole script
// stays strict (app.js begins with 'use strict', which only counts first in a script).
const script = `'use strict'\n/*! @dagrejs/dagre, MIT license: https://github.com/dagrejs/dagre */\nvar dagre = (function () {\n${
  dagreJs.replace(/\/\/# sourceMappingURL=\S*\s*$/, '')}\nreturn dagre\n})();\n${appJs}`

const asset = (body: string, type: string) => () =>
  new Response(body, { headers: { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-cache' } })

export const uiRoutes = (clock: Clock) =>
  new Elysia()
    .get('/', asset(indexHtml, 'text/html'), { detail: { hide: true } })
    .get('/ui', asset(indexHtml, 'text/html'), { detail: { hide: true } })
    .get('/ui/app.js', asset(script, 'text/javascript'), { detail: { hide: true } })
    .get('/ui/style.css', asset(styleCss, 'text/css'), { detail: { hide: true } })
    // Browsers ask for it on every page (Swagger UI's too); nothing to show, nothing to log.
    .get('/favicon.ico', () => new Response(null, { status: 204 }), { detail: { hide: true } })
    // The master's clock, so the UI shows heartbeat ages by it rather than by the browser's.
    .get('/ui/clock', () => ({ now_ms: clock.now() }), { detail: { hide: true } })
