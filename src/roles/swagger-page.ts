// Swagger UI's page. It is served without the token (it holds no data), so it must itself send the
// token with every request, the OpenAPI document's included: the token is the one this browser
// tab already holds (the web UI keeps it in sessionStorage under the same key), or the one typed
// into the form above the document, or what Swagger UI's Authorize button was given.
export const TOKEN_STORAGE_KEY = 'minispark-token'

const esc = (s: string): string => s.replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

export function swaggerPage(title: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>${esc(title)}: API</title>
  <link rel="stylesheet" href="/swagger/assets/swagger-ui.css" />
  <style>
    #token-bar { font: 14px sans-serif; padding: 8px 20px; background: #f4f4f4; border-bottom: 1px solid #ddd; display: none }
    #token-bar input { width: 22em; margin: 0 6px }
  </style>
</head>
<body>
  <form id="token-bar"><span id="token-why">This server needs its token (Authorization: Bearer …) even to show its API.</span>
    <input id="token-input" type="password" autocomplete="off" placeholder="token"><button>Use for this tab</button></form>
  <div id="swagger-ui"></div>
  <script src="/swagger/assets/swagger-ui-bundle.js" crossorigin></script>
  <script>
    'use strict'
    ;(() => {
      const KEY = ${JSON.stringify(TOKEN_STORAGE_KEY)}
      const bar = document.getElementById('token-bar')
      bar.onsubmit = ev => {
        ev.preventDefault()
        sessionStorage.setItem(KEY, document.getElementById('token-input').value.trim())
        location.reload()
      }
      const token = () => sessionStorage.getItem(KEY)
      const ui = SwaggerUIBundle({
        url: '/swagger/json',
        dom_id: '#swagger-ui',
        deepLinking: true,
        // The Authorize button's token wins; else the tab's own.
        requestInterceptor: req => {
          const t = token()
          if (t && !req.headers.Authorization && !req.headers.authorization) req.headers.Authorization = 'Bearer ' + t
          return req
        },
        responseInterceptor: res => {
          if (res.status === 401 && res.url.endsWith('/swagger/json')) {
            if (token()) document.getElementById('token-why').textContent = 'The token this tab holds was refused: give the right one.'
            bar.style.display = 'block'
          }
          return res
        },
        onComplete: () => {
          const t = token()
          if (t) ui.preauthorizeApiKey('bearer', t)
        },
      })
    })()
  </script>
</body>
</html>
`
}
