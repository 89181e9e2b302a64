package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/dsctl/dsctl/probes/health"
	"github.com/dsctl/dsctl/probes/kafka"
	"github.com/dsctl/dsctl/probes/lock"
	"github.com/dsctl/dsctl/probes/zk"
)

// MinRefresh is the floor of the refresh interval: faster would only load the backends.
const MinRefresh = 500 * time.Millisecond

// maxBackoff caps the wait between retries of a backend that keeps failing.
const maxBackoff = 30 * time.Second

// tickEvery redraws countdowns and starts due refreshes.
const tickEvery = 250 * time.Millisecond

// Backend is what the panes read and act on. Live implements it over the probes;
// tests use a fake. Every method is bounded by its own timeout and safe to call from
// several goroutines; the model never calls it from Update or View, only from
// tea.Cmds (off the render path).
type Backend interface {
	// Configured lists the backends there is an endpoint for: redis, zookeeper, kafka, sql.
	Configured() []string
	// Health checks every configured backend.
	Health(ctx context.Context) []health.Result
	// ZKStatus asks every ensemble member for its state.
	ZKStatus(ctx context.Context) (*zk.Status, error)
	// ZKList reads a znode: its data, stat and children.
	ZKList(ctx context.Context, path string) (*ZKListing, error)
	// ZKWatch watches paths until ctx ends; events arrive on the channel, which is
	// closed when the watch ends.
	ZKWatch(ctx context.Context, paths []string) (<-chan zk.Event, error)
	// Kafka reads the cluster, audits it and reads the consumer groups.
	Kafka(ctx context.Context) (*KafkaData, error)
	// Locks lists every lock on every lock backend.
	Locks(ctx context.Context) ([]LockRow, error)
	// InspectLock reads one lock in full.
	InspectLock(ctx context.Context, backend, name string) (*lock.Info, error)
	// BreakLock deletes a lock whoever holds it and returns what it was.
	BreakLock(ctx context.Context, backend, name string) (*lock.Info, error)
}

// ZKListing is one znode as the tree browser shows it.
type ZKListing struct {
	Path     string
	Data     []byte
	Stat     zk.Stat
	Children []string
}

// KafkaData is one refresh of the Kafka pane.
type KafkaData struct {
	Snapshot *kafka.Snapshot
	Report   *kafka.Report
	Topics   []kafka.TopicSummary
	Groups   *kafka.GroupsReport
	// GroupsErr says why the consumer groups could not be read (the audit still shows).
	GroupsErr string
}

// LockRow is one lock and the backend it lives on.
type LockRow struct {
	// Backend names the locker, e.g. "redis 127.0.0.1:6379".
	Backend string
	Info    lock.Info
	// FetchedAt is when the list was read: TTLs count down from it.
	FetchedAt time.Time
}

// Config is how the dashboard runs.
type Config struct {
	Backend  Backend
	Refresh  time.Duration // clamped to MinRefresh
	ReadOnly bool
	// Now is the clock (tests pin it); nil means time.Now.
	Now func() time.Time
	// Title is shown top left, e.g. "dsctl tui · sandbox".
	Title string
	// Ctx bounds every backend call; cancelled when the program ends.
	Ctx context.Context
	// StartPane is the pane shown first (one of PaneOrder; "" is Overview).
	StartPane string
	// RingKeys is the number of keys the Ring pane places (default 100,000).
	RingKeys int64
}

// Source names: each is refreshed on its own schedule, skipped while in flight, and
// retried with backoff while it fails.
const (
	srcHealth = "health"
	srcLocks  = "locks"
	srcZK     = "zookeeper"
	srcKafka  = "kafka"
)

var sourceOrder = []string{srcHealth, srcLocks, srcZK, srcKafka}

// sourceOn says whether a source has a backend to read.
func sourceOn(name string, configured map[string]bool) bool {
	switch name {
	case srcLocks:
		return configured["redis"] || configured["zookeeper"] || configured["sql"]
	case srcHealth:
		return true
	}
	return configured[name]
}

// source is the refresh state of one data source.
type source struct {
	name     string
	inflight bool
	failures int
	next     time.Time // when the next refresh is due
	lastOK   time.Time
	lastErr  string
	label    string // what the banner names: the failing backend
	every    time.Duration
}

// failedBackend is the backend a failed refresh names: the BackendError's, else the source's.
func failedBackend(msg fetchedMsg) string {
	var be *BackendError
	if errors.As(msg.err, &be) {
		return be.Backend
	}
	return msg.source
}

// backoff is the wait after n consecutive failures: the interval doubled per
// failure, capped at maxBackoff.
func backoff(interval time.Duration, n int) time.Duration {
	d := interval
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// Messages.
type (
	tickMsg    struct{ at time.Time }
	fetchedMsg struct {
		source string
		data   any
		err    error
	}
)

// Model is the dashboard: tabs, banners, the active pane and the footer.
type Model struct {
	cfg     Config
	ctx     context.Context
	now     time.Time
	width   int
	height  int
	active  int
	help    bool
	filter  lineInput
	editing bool // the / filter has the keyboard
	sources map[string]*source
	// refreshes counts refreshes started, for the footer and tests.
	refreshes int

	overview *overviewPane
	locks    *locksPane
	kafka    *kafkaPane
	zk       *zkPane
	ring     *ringPane
	ids      *idsPane
}

// New builds the dashboard model.
func New(cfg Config) *Model {
	if cfg.Refresh < MinRefresh {
		cfg.Refresh = MinRefresh
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ctx == nil {
		cfg.Ctx = context.Background()
	}
	if cfg.Title == "" {
		cfg.Title = "dsctl tui"
	}
	m := &Model{cfg: cfg, ctx: cfg.Ctx, now: cfg.Now(), width: 80, height: 24, sources: map[string]*source{}}
	configured := map[string]bool{}
	if cfg.Backend != nil {
		for _, b := range cfg.Backend.Configured() {
			configured[b] = true
		}
	}
	for _, name := range sourceOrder {
		if !sourceOn(name, configured) {
			continue
		}
		every := cfg.Refresh
		if name == srcKafka { // an audit reads every topic's configs: half as often
			every = 2 * cfg.Refresh
		}
		m.sources[name] = &source{name: name, every: every}
	}
	if cfg.Backend == nil {
		delete(m.sources, srcHealth)
	}
	m.overview = newOverviewPane(configured)
	m.locks = newLocksPane(sourceOn(srcLocks, configured), cfg.ReadOnly)
	m.kafka = newKafkaPane(configured[srcKafka])
	m.zk = newZKPane(configured[srcZK])
	m.ring = newRingPane(cfg.RingKeys)
	m.ids = newIDsPane()
	for i, p := range PaneOrder {
		if p == cfg.StartPane {
			m.active = i
		}
	}
	return m
}

// Init starts the clock, the first refresh of every source and the first ring run.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.tick(), m.refreshDue(true), m.ring.simulate())
}

func (m *Model) tick() tea.Cmd {
	return tea.Tick(tickEvery, func(t time.Time) tea.Msg { return tickMsg{t} })
}

// refreshDue starts every source that is due (all when force) and not in flight.
func (m *Model) refreshDue(force bool) tea.Cmd {
	var cmds []tea.Cmd
	for _, name := range sourceOrder {
		s := m.sources[name]
		if s == nil || s.inflight {
			continue // overlapping refreshes are skipped
		}
		if !force && m.now.Before(s.next) {
			continue
		}
		s.inflight = true
		m.refreshes++
		cmds = append(cmds, m.fetch(name))
	}
	return tea.Batch(cmds...)
}

// fetch runs one source's backend call in a tea.Cmd (off the render path).
func (m *Model) fetch(name string) tea.Cmd {
	b, ctx := m.cfg.Backend, m.ctx
	return func() tea.Msg {
		var data any
		var err error
		switch name {
		case srcHealth:
			data = b.Health(ctx)
		case srcLocks:
			data, err = b.Locks(ctx)
		case srcZK:
			var st *zk.Status
			st, err = b.ZKStatus(ctx)
			if err == nil && st.Verdict == zk.VerdictDown {
				err = fmt.Errorf("no ensemble member answers (%s)", strings.Join(st.Problems, "; "))
			}
			data = st
		case srcKafka:
			data, err = b.Kafka(ctx)
		}
		return fetchedMsg{source: name, data: data, err: err}
	}
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = max(msg.Width, 20), max(msg.Height, 6)
		return m, nil
	case tickMsg:
		m.now = m.cfg.Now()
		return m, tea.Batch(m.tick(), m.refreshDue(false))
	case fetchedMsg:
		return m, m.fetched(msg)
	case tea.KeyMsg:
		return m, m.key(msg)
	case tea.MouseMsg:
		return m, m.mouse(msg)
	}
	// Pane messages (ring results, ZooKeeper events, lock inspections...).
	return m, m.paneMsg(msg)
}

func (m *Model) fetched(msg fetchedMsg) tea.Cmd {
	s := m.sources[msg.source]
	if s == nil {
		return nil
	}
	now := m.cfg.Now()
	m.now = now
	s.inflight = false
	if msg.err != nil {
		s.failures++
		s.lastErr = firstLine(msg.err.Error())
		s.label = failedBackend(msg)
		s.next = now.Add(backoff(s.every, s.failures))
	} else {
		s.failures, s.lastErr, s.lastOK = 0, "", now
		s.next = now.Add(s.every)
	}
	var cmd tea.Cmd
	switch msg.source {
	case srcHealth:
		rs, _ := msg.data.([]health.Result)
		m.overview.setHealth(rs, now)
	case srcLocks:
		// Rows come with an error when some lock backends answered and one did not.
		if rows, _ := msg.data.([]LockRow); rows != nil || msg.err == nil {
			var be *BackendError
			if errors.As(msg.err, &be) { // keep the failed backend's last rows
				for _, r := range m.locks.rows {
					if strings.HasPrefix(r.Backend, be.Backend+" ") {
						rows = append(rows, r)
					}
				}
			}
			m.locks.setRows(rows, now)
		}
		m.locks.err = s.lastErr
	case srcZK:
		st, _ := msg.data.(*zk.Status)
		m.zk.setStatus(st, s.lastErr)
		cmd = m.zk.afterStatus(m)
	case srcKafka:
		if msg.err == nil {
			d, _ := msg.data.(*KafkaData)
			m.kafka.setData(d, now)
		}
		m.kafka.err = s.lastErr
	}
	return cmd
}

func (m *Model) activeName() string { return PaneOrder[m.active] }

// capturing reports whether the active pane takes every key (a text field has focus).
func (m *Model) capturing() bool {
	switch m.activeName() {
	case PaneIDs:
		return m.ids.editing
	case PaneLocks:
		return m.locks.confirming
	}
	return false
}

func (m *Model) key(msg tea.KeyMsg) tea.Cmd {
	k := msg.String()
	if k == "ctrl+c" {
		return tea.Quit
	}
	if m.editing { // the / filter has the keyboard
		switch msg.Type {
		case tea.KeyEnter:
			m.editing = false
		case tea.KeyEsc:
			m.editing = false
			m.filter.set("")
		default:
			m.filter.key(msg)
		}
		m.filterChanged()
		return nil
	}
	if m.help {
		if a := lookup("", k, m.cfg.ReadOnly); a == ActQuit {
			return tea.Quit
		}
		m.help = false // any key closes the help
		return nil
	}
	if m.capturing() {
		switch k {
		case "tab", "shift+tab":
		default:
			return m.paneKey(msg)
		}
	}
	a := lookup(m.activeName(), k, m.cfg.ReadOnly)
	switch a {
	case "":
		return nil
	case ActQuit:
		return tea.Quit
	case ActHelp:
		m.help = true
		return nil
	case ActNextPane:
		m.active = (m.active + 1) % len(PaneOrder)
	case ActPrevPane:
		m.active = (m.active + len(PaneOrder) - 1) % len(PaneOrder)
	case ActPane:
		m.active = int(k[0] - '1')
	case ActFilter: // a new filter each time
		m.editing = true
		m.filter.set("")
		m.filterChanged()
	case ActRefresh:
		return m.refreshDue(true)
	case ActBack:
		if m.paneBack() {
			return nil
		}
		m.filter.set("")
		m.filterChanged()
	default:
		return m.paneAction(a)
	}
	return nil
}

// mouse: the wheel scrolls, a click on a tab opens it.
func (m *Model) mouse(msg tea.MouseMsg) tea.Cmd {
	switch {
	case msg.Button == tea.MouseButtonWheelUp:
		return m.paneAction(ActUp)
	case msg.Button == tea.MouseButtonWheelDown:
		return m.paneAction(ActDown)
	case msg.Action == tea.MouseActionPress && msg.Button == tea.MouseButtonLeft && msg.Y == 0:
		x := 0
		for i, t := range m.tabLabels() {
			w := len([]rune(t)) + 1
			if msg.X >= x && msg.X < x+w {
				m.active = i
			}
			x += w
		}
	}
	return nil
}

func (m *Model) filterChanged() {
	f := m.filter.String()
	m.locks.setFilter(f)
	m.kafka.setFilter(f)
	m.zk.setFilter(f)
}

func (m *Model) paneAction(a Action) tea.Cmd {
	switch m.activeName() {
	case PaneOverview:
		return nil
	case PaneLocks:
		return m.locks.action(a, m)
	case PaneKafka:
		return m.kafka.action(a, m)
	case PaneZK:
		return m.zk.action(a, m)
	case PaneRing:
		return m.ring.action(a)
	case PaneIDs:
		return m.ids.action(a, m.now)
	}
	return nil
}

func (m *Model) paneKey(msg tea.KeyMsg) tea.Cmd {
	switch m.activeName() {
	case PaneIDs:
		return m.ids.key(msg, m.now)
	case PaneLocks:
		return m.locks.key(msg, m)
	}
	return nil
}

// paneBack lets the pane close a sub-view on esc; false when it had none.
func (m *Model) paneBack() bool {
	switch m.activeName() {
	case PaneLocks:
		return m.locks.back()
	case PaneKafka:
		return m.kafka.back()
	}
	return false
}

func (m *Model) paneMsg(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case ringResultMsg:
		m.ring.result(msg)
	case zkListMsg:
		before := m.zk.path
		cmd := m.zk.message(msg, m)
		if m.zk.path != before && m.filter.String() != "" { // a filter of the old node's children
			m.filter.set("")
			m.filterChanged()
		}
		return cmd
	case zkWatchStartedMsg, zkEventMsg, zkRewatchMsg:
		return m.zk.message(msg, m)
	case lockInspectMsg, lockBrokeMsg:
		return m.locks.message(msg, m)
	}
	return nil
}

// View renders the frame: tabs, banners, pane, footer. It only reads the model.
func (m *Model) View() string {
	w, h := m.width, m.height
	var top []string
	top = append(top, m.tabsLine(w))
	top = append(top, m.banners(w)...)
	footer := m.footer(w)
	bodyH := h - len(top) - 1
	if bodyH < 1 {
		bodyH = 1
	}
	var body string
	if m.help {
		body = block(m.helpView(w), w, bodyH)
	} else {
		body = m.paneView(w, bodyH)
	}
	return strings.Join(top, "\n") + "\n" + body + "\n" + footer
}

func (m *Model) paneView(w, h int) string {
	switch m.activeName() {
	case PaneOverview:
		return m.overview.view(m.overviewCounts(), w, h, m.now)
	case PaneLocks:
		return m.locks.view(w, h, m.now)
	case PaneKafka:
		return m.kafka.view(w, h, m.now)
	case PaneZK:
		return m.zk.view(w, h)
	case PaneRing:
		return m.ring.view(w, h)
	case PaneIDs:
		return m.ids.view(w, h)
	}
	return ""
}

func (m *Model) tabLabels() []string {
	out := make([]string, len(PaneOrder))
	for i, p := range PaneOrder {
		out[i] = fmt.Sprintf(" %d %s ", i+1, p)
		if i == m.active {
			out[i] = fmt.Sprintf("[%d %s]", i+1, p)
		}
	}
	return out
}

func (m *Model) tabsLine(w int) string {
	var b strings.Builder
	for i, t := range m.tabLabels() {
		if i == m.active {
			b.WriteString(stActive.Render(t))
		} else {
			b.WriteString(t)
		}
		b.WriteByte(' ')
	}
	line := b.String()
	if pad := w - ansi.StringWidth(line) - ansi.StringWidth(m.cfg.Title); pad >= 1 {
		return line + strings.Repeat(" ", pad) + stTitle.Render(m.cfg.Title)
	}
	return cut(line, w)
}

// banners: one line per failing backend, with the retry schedule.
func (m *Model) banners(w int) []string {
	var out []string
	for _, name := range sourceOrder {
		s := m.sources[name]
		if s == nil || s.failures == 0 || name == srcHealth {
			continue
		}
		wait := s.next.Sub(m.now).Round(time.Second)
		if wait < 0 {
			wait = 0
		}
		retry := fmt.Sprintf("retry in %s", wait)
		if s.inflight {
			retry = "retrying now"
		}
		failures := "1 failure"
		if s.failures > 1 {
			failures = fmt.Sprintf("%d failures", s.failures)
		}
		label := s.label
		if label == "" {
			label = name
		}
		msg := strings.TrimPrefix(s.lastErr, label+": ")
		line := fmt.Sprintf("! %s UNREACHABLE: %s · %s (%s)", label, msg, retry, failures)
		out = append(out, stBanner.Render(cut(line, w)))
	}
	return out
}

func (m *Model) footer(w int) string {
	if m.editing {
		return fit("/"+m.filter.view(true)+"   enter keep · esc clear", w)
	}
	var parts []string
	if f := m.filter.String(); f != "" {
		parts = append(parts, fmt.Sprintf("filter %q", f))
	}
	last := time.Time{}
	for _, s := range m.sources {
		if s.lastOK.After(last) {
			last = s.lastOK
		}
	}
	if !last.IsZero() {
		parts = append(parts, "updated "+ago(m.now.Sub(last)))
	}
	parts = append(parts, "every "+m.cfg.Refresh.String())
	if m.cfg.ReadOnly {
		parts = append(parts, "read-only")
	}
	parts = append(parts, "? help", "q quit")
	return stDim.Render(fit(strings.Join(parts, " · "), w))
}

// helpView is the keymap: this pane's keys beside the global ones (stacked when narrow).
func (m *Model) helpView(w int) []string {
	lines := []string{stTitle.Render("Keys") + "  (any key closes this help)", ""}
	paneKeys := helpSections(m.activeName(), m.cfg.ReadOnly, 12, false)
	if len(paneKeys) == 0 {
		paneKeys = []string{m.activeName(), "  (no keys of its own)"}
	}
	global := helpSections("-", m.cfg.ReadOnly, 12, true)
	if w < 80 {
		return append(append(lines, paneKeys...), global...)
	}
	lw := w / 2
	return append(lines, sideBySide(paneKeys, lw, global, w-lw-1, max(len(paneKeys), len(global)))...)
}

// ago renders an age for people: "now", "3s ago", "2m ago".
func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh ago", int(d.Hours()))
}

// Run runs the dashboard on the terminal until q or ctrl-C.
func Run(cfg Config, opts ...tea.ProgramOption) error {
	m := New(cfg)
	opts = append([]tea.ProgramOption{tea.WithAltScreen(), tea.WithMouseCellMotion()}, opts...)
	_, err := tea.NewProgram(m, opts...).Run()
	return err
}
