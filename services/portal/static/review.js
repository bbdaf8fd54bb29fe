// Keyboard shortcuts on the possible-match page: a accept, r reject, s skip. The buttons
// are plain forms and links, so the page works the same without JavaScript.
document.addEventListener('keydown', function (event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return
  var target = event.target
  if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.isContentEditable)) return
  var ids = { a: 'accept', r: 'reject', s: 'skip' }
  var id = ids[event.key]
  if (!id) return
  var control = document.getElementById(id)
  if (!control) return
  event.preventDefault()
  control.click()
})

// The waterfall's bars: their place and length come from data attributes (the numbers are in
// the table too, so nothing is lost without JavaScript).
document.querySelectorAll('[data-left]').forEach(function (bar) {
  bar.style.left = bar.getAttribute('data-left') + '%'
  bar.style.width = bar.getAttribute('data-width') + '%'
})
