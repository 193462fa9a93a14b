// Text assets embedded in the binary with `import x from '...' with { type: 'text' }`.
declare module 'swagger-ui-dist/swagger-ui-bundle.js' { const text: string; export default text }
declare module 'swagger-ui-dist/swagger-ui.css' { const text: string; export default text }
