// Text assets embedded in the binary with `import x from '...' with { type: 'text' }`.
declare module 'swagger-ui-dist/swagger-ui-bundle.js' { const text: string; export default text }
declare module 'swagger-ui-dist/swagger-ui.css' { const text: string; export default text }
// The master's web UI (src/roles/master/ui), plain HTML, JavaScript and CSS served as text.
declare module '*/ui/index.html' { const text: string; export default text }
declare module '*/ui/app.js' { const text: string; export default text }
declare module '*/ui/style.css' { const text: string; export default text }
declare module '*/dagre.min.js' { const text: string; export default text }
