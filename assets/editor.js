// The post editor's enhancements: a preview that follows the text as it is typed, image
// upload without leaving the page, autosave every few seconds, and who else has the
// post open. The editor works fully without this script: its Preview and Upload image
// buttons post the whole form and the server answers with the page, and saving with a
// button merges with anyone else's changes. So anything this script cannot do, it
// leaves to those buttons.

import { ErrorSummary, setFocus } from '/assets/nhsuk-frontend.min.js'

// Long enough that a steady typist sends one request per pause, short enough to feel live.
const PREVIEW_DELAY_MS = 300

const UPLOAD_FIELDS = ['image', 'image_alt']

const form = document.querySelector('form[data-preview-url][data-upload-url]')
const body = form?.querySelector('textarea[name="body"]')
const preview = document.getElementById('preview')
const fileInput = form?.querySelector('input[type="file"][name="image"]')
const altText = form?.querySelector('[name="image_alt"]')
const uploadButton = document.getElementById('upload-button')

function csrfToken () {
  return form.querySelector('input[name="csrf_token"]')?.value ?? ''
}

// ---------------------------------------------------------------------------------------
// Live preview

let previewTimer
let previewRequest

function enablePreview () {
  body.addEventListener('input', () => {
    clearTimeout(previewTimer)
    previewTimer = setTimeout(refreshPreview, PREVIEW_DELAY_MS)
  })
  const placeholder = preview.querySelector('.rounds-editor__placeholder')
  if (placeholder) {
    // The server's placeholder tells people to press Preview; here it follows the text.
    if (body.value.trim() === '') {
      placeholder.textContent = 'The preview appears here as you type.'
    } else {
      refreshPreview()
    }
  }
}

async function refreshPreview () {
  // Only the answer to the latest text matters: drop any request still on its way.
  previewRequest?.abort()
  const request = new AbortController()
  previewRequest = request
  try {
    const response = await fetch(form.dataset.previewUrl, {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: csrfToken(), body: body.value }),
      credentials: 'same-origin',
      signal: request.signal
    })
    if (!response.ok) {
      throw new Error(`the preview answered ${response.status}`)
    }
    const html = await response.text()
    if (request.signal.aborted) {
      return
    }
    if (html.trim() === '') {
      previewMessage('Nothing to preview yet.')
    } else {
      // This HTML comes from our own server, which builds it with the same sanitiser as
      // published posts (SafeHtml), so it may be inserted as markup.
      preview.innerHTML = html
    }
  } catch (error) {
    if (error.name !== 'AbortError') {
      previewMessage('The preview could not be updated. Press “Preview” to try again.')
    }
  }
}

function previewMessage (text) {
  const message = document.createElement('p')
  message.className = 'nhsuk-body-s rounds-editor__placeholder'
  message.textContent = text
  preview.replaceChildren(message)
}

// ---------------------------------------------------------------------------------------
// Image upload

let uploading = false
// Where the caret was in the text: unknown until the text box has had focus, and then the
// image goes at the end, as the hint says.
let caretKnown = false
let uploadStatus

function enableUpload () {
  body.addEventListener('focus', () => {
    caretKnown = true
  })
  // A status line under the button: seen by everyone, read out politely by screen readers.
  uploadStatus = document.createElement('p')
  uploadStatus.className = 'nhsuk-body-s rounds-editor__upload-status'
  uploadStatus.setAttribute('role', 'status')
  uploadButton.insertAdjacentElement('afterend', uploadStatus)

  uploadButton.addEventListener('click', (event) => {
    event.preventDefault()
    if (!uploading) {
      upload()
    }
  })
}

async function upload () {
  uploading = true
  clearUploadErrors()
  uploadStatus.textContent = 'Uploading the image…'
  const data = new FormData()
  data.append('csrf_token', csrfToken())
  const file = fileInput.files?.[0]
  if (file) {
    data.append('image', file)
  }
  data.append('image_alt', altText.value)
  try {
    const response = await fetch(form.dataset.uploadUrl, {
      method: 'POST',
      body: data,
      credentials: 'same-origin'
    })
    const isJson = (response.headers.get('Content-Type') ?? '').startsWith('application/json')
    if (response.status === 201 && isJson) {
      const answer = await response.json()
      insertOnOwnLine(answer.markdown)
      fileInput.value = ''
      altText.value = ''
      uploadStatus.textContent = 'Image uploaded and added to the text. Save to keep it.'
      refreshPreview()
    } else if (response.status === 400 && isJson) {
      const answer = await response.json()
      showUploadErrors(answer.errors ?? [])
    } else if (response.status === 413) {
      showUploadErrors([{ field: 'image', message: 'The image is too large: choose a smaller file' }])
    } else {
      throw new Error(`the upload answered ${response.status}`)
    }
  } catch {
    showUploadErrors([{
      field: '',
      message: 'The image could not be uploaded. Try again, or save the post first.'
    }])
  } finally {
    uploading = false
  }
}

/** Puts the Markdown where the caret is, as a paragraph of its own. */
function insertOnOwnLine (markdown) {
  const text = body.value
  const start = caretKnown ? body.selectionStart : text.length
  const end = caretKnown ? body.selectionEnd : text.length
  const before = text.slice(0, start)
  const after = text.slice(end)
  const lead = before.trim() === '' ? '' : before.endsWith('\n\n') ? '' : before.endsWith('\n') ? '\n' : '\n\n'
  const trail = after.trim() === '' ? '' : after.startsWith('\n\n') ? '' : after.startsWith('\n') ? '\n' : '\n\n'
  const beforeKept = before.trim() === '' ? '' : before
  body.value = beforeKept + lead + markdown + trail + after
  const caret = beforeKept.length + lead.length + markdown.length
  body.setSelectionRange(caret, caret)
  caretKnown = true
}

function showUploadErrors (errors) {
  uploadStatus.textContent = ''
  for (const error of errors) {
    if (UPLOAD_FIELDS.includes(error.field)) {
      setFieldError(error.field, error.message)
    }
  }
  showErrorSummary(errors)
}

/**
 * Marks a field wrong as the server does (ui.rs): an error message between the hint and
 * the control, the error style on its group, and the message in its description.
 */
function setFieldError (name, message) {
  const control = form.querySelector(`[name="${name}"]`)
  const group = control?.closest('.nhsuk-form-group')
  if (!group) {
    return
  }
  const id = `${name}-error`
  let error = document.getElementById(id)
  if (!error) {
    error = document.createElement('span')
    error.className = 'nhsuk-error-message'
    error.id = id
    control.before(error)
  }
  const hidden = document.createElement('span')
  hidden.className = 'nhsuk-u-visually-hidden'
  hidden.textContent = 'Error: '
  error.replaceChildren(hidden, message)
  group.classList.add('nhsuk-form-group--error')
  const ids = new Set((control.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean))
  ids.add(id)
  control.setAttribute('aria-describedby', [...ids].join(' '))
  if (control instanceof HTMLTextAreaElement) {
    control.classList.add('nhsuk-textarea--error')
  }
}

function clearFieldError (name) {
  const id = `${name}-error`
  document.getElementById(id)?.remove()
  const control = form.querySelector(`[name="${name}"]`)
  if (!control) {
    return
  }
  control.closest('.nhsuk-form-group')?.classList.remove('nhsuk-form-group--error')
  control.classList.remove('nhsuk-textarea--error')
  const ids = (control.getAttribute('aria-describedby') ?? '').split(/\s+/).filter((t) => t && t !== id)
  if (ids.length) {
    control.setAttribute('aria-describedby', ids.join(' '))
  } else {
    control.removeAttribute('aria-describedby')
  }
}

/** Removes what an earlier upload (by this script or by the server) said was wrong. */
function clearUploadErrors () {
  for (const name of UPLOAD_FIELDS) {
    clearFieldError(name)
  }
  for (const summary of document.querySelectorAll('.nhsuk-error-summary')) {
    const links = UPLOAD_FIELDS.map((name) => `a[href="#${name}"]`).join(', ')
    for (const link of summary.querySelectorAll(links)) {
      link.closest('li')?.remove()
    }
    if (summary.dataset.roundsUpload !== undefined || !summary.querySelector('li')) {
      summary.remove()
    }
  }
}

/** The NHS.UK error summary, as the server draws it, at the top of the page. */
function showErrorSummary (errors) {
  const items = errors.map(({ field, message }) => {
    const item = document.createElement('li')
    if (field) {
      const link = document.createElement('a')
      link.href = `#${field}`
      link.textContent = message
      item.append(link)
    } else {
      item.textContent = message
    }
    return item
  })
  const existing = document.querySelector('.nhsuk-error-summary')
  if (existing) {
    existing.querySelector('.nhsuk-error-summary__list')?.append(...items)
    setFocus(existing)
    return
  }
  const summary = document.createElement('div')
  summary.className = 'nhsuk-error-summary'
  summary.dataset.module = 'nhsuk-error-summary'
  summary.dataset.roundsUpload = ''
  const alert = document.createElement('div')
  alert.setAttribute('role', 'alert')
  const heading = document.createElement('h2')
  heading.className = 'nhsuk-error-summary__heading'
  heading.textContent = 'There is a problem'
  const summaryBody = document.createElement('div')
  summaryBody.className = 'nhsuk-error-summary__body'
  const list = document.createElement('ul')
  list.className = 'nhsuk-list nhsuk-error-summary__list'
  list.append(...items)
  summaryBody.append(list)
  alert.append(heading, summaryBody)
  summary.append(alert)
  // Where the server puts it: first in the form's column.
  form.parentElement.prepend(summary)
  try {
    // Focuses the summary and makes its links move to the field's label, as on page load.
    // eslint-disable-next-line no-new
    new ErrorSummary(summary)
  } catch {
    setFocus(summary)
  }
}

// ---------------------------------------------------------------------------------------
// Autosave

const TEXT_FIELDS = ['title', 'summary', 'content_warning', 'body', 'tags', 'slug']
const autosaveStatus = document.getElementById('autosave-status')
const baseInput = form?.querySelector('input[name="base_revision"]')
let lastSaved
let autosaveTimer
let autosaving = null
// Once someone else has saved a newer version, autosave stops: saving with the button
// merges their changes with these, which an autosave never does.
let stale = false
let revoked = false

function fieldValues () {
  const values = {}
  for (const name of TEXT_FIELDS) {
    const field = form.querySelector(`[name="${name}"]`)
    if (field) {
      values[name] = field.value
    }
  }
  return values
}

function snapshot () {
  return JSON.stringify(fieldValues())
}

function setStatus (element, text) {
  // Only real changes, so a screen reader is not told the same thing every few seconds.
  if (element && element.textContent !== text) {
    element.textContent = text
  }
}

function clock () {
  return new Date().toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })
}

function enableAutosave () {
  lastSaved = snapshot()
  const seconds = Number(form.dataset.autosaveSeconds) || 5
  form.addEventListener('input', (event) => {
    if (!TEXT_FIELDS.includes(event.target?.name) || stale || revoked) {
      return
    }
    // At most one autosave every few seconds while typing, and one after the last key.
    if (!autosaveTimer) {
      autosaveTimer = setTimeout(() => {
        autosaveTimer = null
        autosave()
      }, seconds * 1000)
    }
  })
  // A save with a button must name the revision this script last saved, or it would
  // merge against its own autosave: wait for one in flight before sending the form.
  form.addEventListener('submit', (event) => {
    clearTimeout(autosaveTimer)
    autosaveTimer = null
    if (autosaving) {
      event.preventDefault()
      const submitter = event.submitter
      autosaving.finally(() => form.requestSubmit(submitter))
    }
  })
}

function autosave () {
  if (stale || revoked || autosaving) {
    return autosaving
  }
  const now = snapshot()
  if (now === lastSaved) {
    return null
  }
  setStatus(autosaveStatus, 'Saving…')
  autosaving = sendAutosave(now).finally(() => {
    autosaving = null
  })
  return autosaving
}

async function sendAutosave (now) {
  try {
    const response = await fetch(form.dataset.autosaveUrl, {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: csrfToken(), base_revision: baseInput?.value ?? '', ...JSON.parse(now) }),
      credentials: 'same-origin'
    })
    const answer = await response.json().catch(() => ({}))
    if (response.ok && answer.revision) {
      if (baseInput) {
        baseInput.value = String(answer.revision)
      }
      lastSaved = now
      setStatus(autosaveStatus, `Saved automatically at ${clock()} (revision ${answer.number}).`)
    } else if (response.status === 409 && answer.status === 'stale') {
      stale = true
      setStatus(autosaveStatus, `${answer.by} saved a newer version (revision ${answer.number}). Your changes are not saved yet: press “Save draft” to merge them with theirs.`)
    } else if (response.status === 403) {
      showRevoked()
    } else if (response.status === 400) {
      const first = answer.errors?.[0]?.message
      setStatus(autosaveStatus, first ? `Not saved automatically: ${first}.` : 'Not saved automatically.')
    } else {
      throw new Error(`autosave answered ${response.status}`)
    }
  } catch {
    setStatus(autosaveStatus, 'Could not save automatically. Your text is still here: press “Save draft” to keep it.')
  }
}

// ---------------------------------------------------------------------------------------
// Presence: who else has the post open

const presence = document.getElementById('presence')
const clientId = (crypto.randomUUID?.() ?? `${Date.now()}-${Math.random()}`.replace(/[^0-9a-z-]/gi, '')).slice(0, 64)
let presenceTimer

function enablePresence () {
  const seconds = Number(form.dataset.presenceSeconds) || 10
  ping()
  presenceTimer = setInterval(ping, seconds * 1000)
  window.addEventListener('pagehide', () => {
    // Form-encoded, as the server reads it (a FormData beacon would be multipart).
    const data = new URLSearchParams({ csrf_token: csrfToken(), client_id: clientId })
    navigator.sendBeacon?.(`${form.dataset.presenceUrl}/leave`, data)
  })
}

async function ping () {
  if (revoked) {
    return
  }
  try {
    const response = await fetch(form.dataset.presenceUrl, {
      method: 'POST',
      body: new URLSearchParams({ csrf_token: csrfToken(), client_id: clientId }),
      credentials: 'same-origin'
    })
    if (response.status === 403) {
      showRevoked()
      return
    }
    if (!response.ok) {
      return
    }
    const answer = await response.json()
    showPresence(answer.others ?? [])
    const head = answer.head
    if (head && baseInput && String(head.id) !== baseInput.value && !head.by_me && !stale) {
      stale = true
      setStatus(autosaveStatus, `${head.by} saved a newer version (revision ${head.number}) at ${head.at}. Press “Save draft” to merge your changes with theirs.`)
    }
  } catch {
    // The next ping will try again; presence is a courtesy, not a lock.
  }
}

function showPresence (others) {
  let text = ''
  if (others.length) {
    text = 'Also editing: ' + others.map((p) => `${p.username} (since ${p.since})`).join(', ')
  }
  const current = presence.textContent.trim()
  if (current === text) {
    return
  }
  if (!text) {
    presence.replaceChildren()
    return
  }
  const line = document.createElement('p')
  line.className = 'nhsuk-body-s'
  const label = document.createElement('strong')
  label.textContent = 'Also editing: '
  line.append(label, others.map((p) => `${p.username} (since ${p.since})`).join(', '))
  presence.replaceChildren(line)
}

/** The person's role changed or was removed while the editor was open. */
function showRevoked () {
  revoked = true
  clearInterval(presenceTimer)
  clearTimeout(autosaveTimer)
  const line = document.createElement('p')
  line.className = 'nhsuk-body rounds-revoked'
  const strong = document.createElement('strong')
  strong.textContent = 'You can no longer edit this post: your role on the blog changed. '
  line.append(strong, 'Your text is still in the form; copy it if you need it.')
  presence.replaceChildren(line)
  setStatus(autosaveStatus, 'Not saved automatically: you can no longer edit this post.')
}

// ---------------------------------------------------------------------------------------
// Start (last, once every binding above exists)

if (form && body && preview) {
  enablePreview()
}
if (form && body && fileInput && altText && uploadButton) {
  enableUpload()
}
if (form && form.dataset.autosaveUrl && autosaveStatus) {
  enableAutosave()
}
if (form && form.dataset.presenceUrl && presence) {
  enablePresence()
}
