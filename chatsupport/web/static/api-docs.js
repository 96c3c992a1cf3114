// Starts the vendored Swagger UI on the appliance's own OpenAPI document (no inline script: CSP stays strict).
window.addEventListener("DOMContentLoaded", function () {
  window.SwaggerUIBundle({ url: "/schema/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
