// The scenario, in a real browser: a leader signs in, writes and publishes a post
// with an image and its alt text, and axe-core finds nothing wrong on any page type or on
// the editor. Then, with JavaScript off, the editor's Preview and Upload image buttons
// still work through the server.
//
// node tests/browser/editor.mjs --base-url http://127.0.0.1:PORT --username jane
//   --password ... --image /path/to.png --update-path /@ceo/... --gone-path /@ceo/...
//   [--screenshots DIR]
// The Rust test tests/e2e/browser.rs seeds the server and runs this.

import { parseArgs } from 'node:util'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'

import { Report, checkAccessibility, launch, newContext } from './lib.mjs'

const { values: args } = parseArgs({
  options: {
    'base-url': { type: 'string' },
    username: { type: 'string' },
    password: { type: 'string' },
    image: { type: 'string' },
    'update-path': { type: 'string' },
    'gone-path': { type: 'string' },
    screenshots: { type: 'string' }
  }
})
for (const required of ['base-url', 'username', 'password', 'image', 'update-path', 'gone-path']) {
  if (!args[required]) {
    console.error(`missing --${required}`)
    process.exit(2)
  }
}

const ALT = 'Ward 7 nurses holding their award'
const TIMEOUT_MS = 10_000

// Playwright's default desktop window, and a common phone.
const WIDE = { width: 1280, height: 720 }
const NARROW = { width: 375, height: 740 }

async function run () {
  const context = await newContext(browser, report, args['base-url'])
  context.setDefaultTimeout(TIMEOUT_MS)
  const page = await context.newPage()

  await axeFindsProblems(page)
  const postPath = await writeAndPublish(page)
  await editProfile(page)
  await checkPublicPages(postPath)
  await checkSignedOutForms()
  await context.close()

  await withoutJavaScript()
}

/** A page with known faults, so a run that finds nothing proves axe ran. */
async function axeFindsProblems (page) {
  await page.setContent('<html><body><img src="data:,"><a href="/"></a></body></html>')
  const found = await checkAccessibility(page, new Report({ quiet: true }), 'a page with known faults')
  report.equal(
    found.map((v) => v.id).sort(),
    ['document-title', 'html-has-lang', 'image-alt', 'landmark-one-main', 'link-name', 'page-has-heading-one', 'region'],
    'axe reports the faults of a page made to have them'
  )
}

async function signIn (page) {
  await page.goto('/login')
  await page.getByLabel('Username or email address').fill(args.username)
  await page.getByLabel('Password').fill(args.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL('**/dashboard')
}

/** axe on a desktop and on a phone: the layout, and what is shown, differ. */
async function checkPage (page, name) {
  await checkAccessibility(page, report, name)
  await page.setViewportSize(NARROW)
  await checkAccessibility(page, report, `${name}, on a phone`)
  await page.setViewportSize(WIDE)
}

/** Full-page pictures for a person to look at, when --screenshots names a folder. */
async function screenshot (page, name) {
  if (args.screenshots) {
    mkdirSync(args.screenshots, { recursive: true })
    await page.screenshot({ path: join(args.screenshots, `${name}.png`), fullPage: true })
    await page.setViewportSize(NARROW)
    await page.screenshot({ path: join(args.screenshots, `${name}-phone.png`), fullPage: true })
    await page.setViewportSize(WIDE)
  }
}

/** Signs in, writes a post with the live preview and the script's upload, publishes it. */
async function writeAndPublish (page) {
  report.step('sign in')
  await signIn(page)
  report.equal(await page.locator('h1').innerText(), 'Dashboard', 'the dashboard after sign-in')
  await checkPage(page, 'dashboard')

  await page.getByRole('link', { name: 'Jane Smith' }).click()
  await page.waitForURL('**/dashboard/@ceo')
  await checkPage(page, 'blog post list')

  await page.getByRole('button', { name: 'Write a new post' }).click()
  await page.waitForURL('**/dashboard/@ceo/new')
  report.equal(
    await page.locator('#preview').innerText(),
    'The preview appears here as you type.',
    'with the script, the preview says it follows the text'
  )
  // Read out at every pause in typing, a live preview would drown the typing.
  report.equal(await page.locator('#preview').getAttribute('aria-live'), null, 'the preview is not a live region')
  await page.setViewportSize(NARROW)
  report.check(
    await page.getByRole('link', { name: 'Back to Jane Smith' }).isVisible(),
    'on a phone the breadcrumb shows a back link'
  )
  await page.setViewportSize(WIDE)
  await checkPage(page, 'editor, empty')
  await screenshot(page, 'editor-empty')

  report.step('editor: a form sent with nothing in it comes back with its errors')
  await page.getByRole('button', { name: 'Publish' }).click()
  await page.locator('.nhsuk-error-summary').waitFor()
  const errors = await page.locator('.nhsuk-error-summary__list li').allInnerTexts()
  report.check(errors.length > 0, `the error summary lists what is wrong (${JSON.stringify(errors)})`)
  // The page came back from the server: let its scripts start before typing into it.
  await page.waitForLoadState()
  await checkPage(page, 'editor with validation errors')

  report.step('editor: the preview follows the text')
  await page.getByLabel('Title (optional)').fill('Winter on ward 7')
  await page.getByLabel('Summary (articles only, optional)').fill('How the team got ready for winter.')
  const body = page.getByRole('textbox', { name: 'Text', exact: true })
  await body.fill('We opened **ward 7** today.')
  await page.locator('#preview strong', { hasText: 'ward 7' }).waitFor()
  await body.pressSequentially('\n\nThanks to _everyone_ who helped.', { delay: 5 })
  await page.locator('#preview em', { hasText: 'everyone' }).waitFor()
  report.equal(
    await page.locator('#preview p').allInnerTexts(),
    ['We opened ward 7 today.', 'Thanks to everyone who helped.'],
    'the preview shows the text as readers will'
  )

  report.step('editor: upload errors are shown without leaving the page')
  await page.evaluate(() => { window.stillHere = true })
  await page.getByRole('button', { name: 'Upload image' }).click()
  // The summary is already there (the server's, from the empty form): wait for the
  // upload's own errors to join it.
  await page.locator('.nhsuk-error-summary a[href="#image"]').waitFor()
  report.check(await page.evaluate(() => window.stillHere === true), 'the upload did not reload the page')
  const uploadErrors = await page.locator('.nhsuk-error-summary__list li').allInnerTexts()
  report.check(
    uploadErrors.some((e) => /image file/i.test(e)) && uploadErrors.some((e) => /alt text/i.test(e)),
    `the summary asks for a file and alt text (${JSON.stringify(uploadErrors)})`
  )
  report.check(
    await page.evaluate(() => document.activeElement?.classList.contains('nhsuk-error-summary')),
    'focus moves to the error summary'
  )
  report.check(await page.locator('#image-error').isVisible(), 'the file field shows its error')
  report.check(await page.locator('#image_alt-error').isVisible(), 'the alt text field shows its error')
  report.check(
    (await page.getByLabel('Alt text').getAttribute('aria-describedby') ?? '').includes('image_alt-error'),
    'the alt text field is described by its error'
  )
  await checkPage(page, 'editor with upload errors')

  report.step('editor: upload an image between the two paragraphs')
  await body.evaluate((textarea) => {
    textarea.focus()
    const end = textarea.value.indexOf('\n')
    textarea.setSelectionRange(end, end)
  })
  await page.locator('input[type=file][name=image]').setInputFiles(args.image)
  await page.getByLabel('Alt text').fill(ALT)
  await page.getByRole('button', { name: 'Upload image' }).click()
  await page.getByRole('status').filter({ hasText: 'Image uploaded' }).waitFor()
  const text = await body.inputValue()
  const image = text.match(/!\[([^\]]*)\]\((\/media\/[^)]+)\)/)
  report.check(image !== null, `the Markdown for the image is in the text: ${JSON.stringify(text)}`)
  report.check(
    /^We opened \*\*ward 7\*\* today\.\n\n!\[[^\]]*\]\([^)]+\)\n\nThanks to _everyone_ who helped\.$/.test(text),
    `the image sits on its own line where the caret was: ${JSON.stringify(text)}`
  )
  report.equal(image?.[1], ALT, 'the Markdown carries the alt text')
  report.equal(await page.locator('input[type=file][name=image]').evaluate((i) => i.files.length), 0, 'the file input is cleared')
  report.equal(await page.getByLabel('Alt text').inputValue(), '', 'the alt text is cleared')
  // The summary still lists what the server found wrong before (the empty form), but
  // nothing about the image.
  report.equal(
    await page.locator('.nhsuk-error-summary a[href="#image"], .nhsuk-error-summary a[href="#image_alt"]').count(),
    0,
    'the summary no longer lists the upload errors'
  )
  report.equal(await page.locator('#image-error, #image_alt-error').count(), 0, 'the image fields show no error')
  report.equal(await page.locator('.nhsuk-form-group--error #image_alt').count(), 0, 'the alt text field is no longer marked wrong')
  await page.locator(`#preview img[alt="${ALT}"]`).waitFor()
  await checkPage(page, 'editor after an upload')
  await screenshot(page, 'editor-filled')

  report.step('editor: publish')
  await page.getByRole('button', { name: 'Publish' }).click()
  await page.waitForURL('**/dashboard/posts/*?done=published')
  report.check(
    (await page.locator('.nhsuk-notification-banner').innerText()).includes('Post published'),
    'the editor says the post is published'
  )
  await checkPage(page, 'editor of a published post')

  const live = page.getByRole('link', { name: /^\/@ceo\// })
  const postPath = await live.getAttribute('href')
  await live.click()
  await page.waitForURL(`**${postPath}`)
  report.equal(await page.locator('h1').innerText(), 'Winter on ward 7', 'the post page heading')
  const published = page.locator('.rounds-post__body img')
  report.equal(await published.getAttribute('alt'), ALT, 'the published image has its alt text')
  // Post images load lazily: bring it into view, then wait for it to arrive.
  await published.scrollIntoViewIfNeeded()
  report.check(
    await published.evaluate((img) => img.decode().then(() => img.naturalWidth > 0, () => false)),
    'the published image loads'
  )
  return postPath
}

/** The profile form, with a photo so the public pages show one. */
async function editProfile (page) {
  report.step('profile settings')
  await page.goto('/dashboard/@ceo/settings')
  await checkPage(page, 'profile settings')
  await screenshot(page, 'settings')
  await page.getByLabel('About (optional)').fill('I lead the trust. I write about our **wards** and our people.')
  await page.locator('input[type=file][name=photo]').setInputFiles(args.image)
  await page.getByLabel('Photo alt text').fill('Jane Smith, smiling')
  await page.getByRole('button', { name: 'Save profile' }).click()
  await page.waitForURL('**/dashboard/@ceo?done=profile')
  await checkPage(page, 'blog post list after saving the profile')

  await page.goto('/account')
  await checkPage(page, 'account')
}

async function checkPublicPages (postPath) {
  // A reader is not signed in: a separate context has no session.
  const reader = await newContext(browser, report, args['base-url'])
  const page = await reader.newPage()
  const pages = [
    ['instance home', '/', 200],
    ['blog home', '/@ceo', 200],
    ['blog home, page 2', '/@ceo?page=2', 200],
    ['post page (article)', postPath, 200],
    ['short update page', args['update-path'], 200],
    ['about page', '/@ceo/about', 200],
    ['blog tag page', '/@ceo/tags/winter', 200],
    ['instance tag page', '/tags/winter', 200],
    ['source code page', '/source', 200],
    ['404 page', '/@ceo/no-such-post', 404],
    ['410 page', args['gone-path'], 410]
  ]
  for (const [name, path, expected] of pages) {
    const response = await page.goto(path)
    report.equal(response?.status(), expected, `status of ${name}`)
    await checkPage(page, name)
    if (name === 'instance home' || name === 'post page (article)') {
      await screenshot(page, name === 'instance home' ? 'instance-home' : 'post')
    }
    if (name === 'blog home') {
      report.equal(await page.locator('a[rel=next]').getAttribute('href'), '/@ceo?page=2', 'the blog home links to page 2')
      report.equal(await page.locator('.rounds-masthead img').getAttribute('alt'), 'Jane Smith, smiling', 'the masthead photo has its alt text')
      await screenshot(page, 'blog-home')
    }
  }
  await reader.close()
}

async function checkSignedOutForms () {
  const visitor = await newContext(browser, report, args['base-url'])
  const page = await visitor.newPage()
  await page.goto('/login')
  await checkPage(page, 'login')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.locator('.nhsuk-error-summary').waitFor()
  report.check(
    (await page.locator('.nhsuk-error-summary').innerText()).includes('Enter your username'),
    'the login form says what is missing'
  )
  await checkPage(page, 'login with errors')
  await visitor.close()
}

/** Pages must work without JavaScript: the editor's buttons post the form to the server. */
async function withoutJavaScript () {
  report.step('without JavaScript: preview and upload through the server')
  const context = await newContext(browser, report, args['base-url'], { javaScriptEnabled: false })
  context.setDefaultTimeout(TIMEOUT_MS)
  const page = await context.newPage()
  await signIn(page)
  await page.goto('/dashboard/@ceo/new')
  await page.getByLabel('Title (optional)').fill('Without scripts')
  await page.getByRole('textbox', { name: 'Text', exact: true }).fill('Plain **HTML** still works.')
  await page.getByRole('button', { name: 'Preview' }).click()
  await page.waitForLoadState()
  report.equal(await page.locator('#preview strong').innerText(), 'HTML', 'the server-side preview shows the text')
  report.equal(await page.getByLabel('Title (optional)').inputValue(), 'Without scripts', 'the preview keeps the title')

  await page.locator('input[type=file][name=image]').setInputFiles(args.image)
  await page.getByLabel('Alt text').fill('A second picture')
  await page.getByRole('button', { name: 'Upload image' }).click()
  await page.waitForLoadState()
  report.check(
    (await page.locator('.nhsuk-notification-banner').innerText()).includes('Image added'),
    'the server says the image was added'
  )
  const text = await page.getByRole('textbox', { name: 'Text', exact: true }).inputValue()
  report.check(
    /^Plain \*\*HTML\*\* still works\.\n\n!\[A second picture\]\(\/media\/[^)]+\)$/.test(text),
    `the server added the image at the end of the text: ${JSON.stringify(text)}`
  )
  await context.close()
}

// Last, so that every declaration above exists when the run starts.
const report = new Report()
const browser = await launch()
let status = 1
try {
  await run()
  status = report.finish()
} catch (error) {
  report.fail(`stopped early: ${error.stack ?? error}`)
  status = report.finish()
} finally {
  await browser.close()
}
process.exit(status)
