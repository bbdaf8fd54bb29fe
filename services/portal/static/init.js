// GOV.UK Frontend's components (served by fjo from the build step's copy, never a CDN).
import { initAll } from '/static/govuk-frontend.min.js'
initAll()
