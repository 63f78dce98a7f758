// The API page: Swagger UI from the local copy (no CDN), reading FastAPI's /openapi.json.
"use strict";
window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
