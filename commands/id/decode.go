package id

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dsctl/dsctl/commands/cmdutil"
	"github.com/dsctl/dsctl/commands/output"
	"github.com/dsctl/dsctl/probes/errs"
	"github.com/dsctl/dsctl/probes/snowflake"
	"github.com/dsctl/dsctl/probes/sortid"
	"github.com/dsctl/dsctl/probes/uuidinfo"
)

// DecodeOptions are the flags and arguments of `dsctl id decode`.
type DecodeOptions struct {
	// IDs are the arguments; none means read one per line from stdin.
	IDs    []string
	Layout string
	Epoch  string
	// Now is the reference time for ages and warnings (zero: the current time).
	Now time.Time
}

func newDecodeCmd(f *cmdutil.Factory) *cobra.Command {
	o := &DecodeOptions{}
	cmd := &cobra.Command{
		Use:   "decode [ID... | -]",
		Short: "Decode snowflake IDs and UUIDs: when each was made, by which worker",
		Long: `Decode IDs given as arguments, or one per line on stdin when none are given or
the only argument is - (bulk mode: streamed, so any number of IDs runs in constant
memory). IDs are decimal or 0x-hex. UUIDs (8-4-4-4-12, {braced}, urn:uuid: or 32 hex digits) are recognised by
their form and decoded per RFC 9562: version, variant, the time of v1, v6 and v7, and
the clock sequence and node of v1 and v6, with a warning when the node is a real MAC
address. ULIDs (26 characters of Crockford base32) and KSUIDs (27 of base62) are
recognised by their form too (or forced with --layout ulid|ksuid) and decoded with
their timestamp (ms for ULID, seconds for KSUID) and random part.

For each ID: its timestamp (RFC 3339 UTC with ms), Unix ms, age and every field of
the layout. Warning codes: future (timestamp ahead of now), before_epoch (sign bit set
on a 63-bit layout: minted by a clock before the epoch), sign_bit (negative as a
signed 64-bit integer), layout_expired (the layout's time bits have run out),
js_unsafe (above 2^53-1: JavaScript numbers change it; JSON carries IDs as strings).

--layout auto, the default for IDs given as arguments, decodes each ID under every
preset and ranks the readings, most plausible first (a recent past time, small worker
and sequence numbers). Decoding stdin needs one layout. On stdin the first line
decides whether the stream holds snowflake IDs or UUIDs; lines that do not parse are
reported on stderr as "line N: ...", the others still decode, and the exit code is 2.

Output: -o table (the default), json, yaml, jsonl or csv. JSON keys:
  ID:    id (a string), layout, timestamp, unix_ms, age, fields {name: value, ...},
         warnings [code, ...]
  auto:  id, candidates [rank, layout, score, plausible, timestamp, unix_ms, age,
         fields, warnings, reasons]
  ULID/KSUID: id, kind (ulid|ksuid), timestamp, unix_ms, age, time_precision,
         random (hex), warnings [{code, message}]
  UUID:  uuid, version, version_name, variant, special, timestamp, unix_ms,
         time_precision, clock_sequence, node, node_is_mac, domain, local_id, notes,
         warnings [{code, message}]
CSV columns: id, layout, timestamp, unix_ms, age, one per field, warnings (codes
joined by ';'); auto: id, rank, layout, timestamp, unix_ms, age, score, plausible,
fields, warnings, reasons; UUIDs: uuid, version, type, variant, timestamp, clock_seq,
node, warnings.`,
		Example: `  dsctl id decode 175928847299117063
  dsctl id decode --layout discord 175928847299117063 0x27100000000007 -o json
  dsctl id decode 017F22E2-79B0-7CC3-98C4-DC0C0C07398F C232AB00-9414-11EC-B3C8-9F6BDECED846
  dsctl id decode 01ARZ3NDEKTSV4RRFFQ69G5FAV 0ujtsYcgvSTl8PAuAdqWYSMnLOv
  dsctl id decode --layout 'time:41:1ms,datacenter:5,worker:5,sequence:12' --epoch 2020-01-01 81985529216486895
  dsctl id decode --layout twitter -o csv < ids.txt > decoded.csv
  zcat ids.gz | dsctl id decode --layout twitter - -o jsonl`,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.IDs = args
			p, err := f.Printer(recordFormats)
			if err != nil {
				return err
			}
			return RunDecode(cmd.Context(), f, p, o)
		},
	}
	cmd.SetFlagErrorFunc(negativeIDError)
	cmd.Flags().StringVarP(&o.Layout, "layout", "l", "", layoutHelp(", or auto (default for arguments: rank every preset)"))
	cmd.Flags().StringVar(&o.Epoch, "epoch", "", epochFlagHelp)
	cmdutil.RegisterFlag(cmd, "layout", layoutCompletion(true, true))
	cmdutil.SetOutputFormats(cmd, recordFormats)
	return cmd
}

// negativeIDError explains "-5": the flag parser reads it as a shorthand flag, but the
// user meant a (negative, so invalid) ID.
func negativeIDError(cmd *cobra.Command, err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, " in -"); strings.HasPrefix(msg, "unknown shorthand flag") && i >= 0 {
		tok := msg[i+4:]
		if _, perr := snowflake.ParseID(tok); perr != nil && strings.Contains(perr.Error(), "negative") {
			return perr
		}
	}
	return cmdutil.FlagError(cmd, err)
}

// RunDecode decodes the IDs of o, or stdin when there are none.
func RunDecode(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *DecodeOptions) error {
	if ctx == nil {
		ctx = context.Background()
	}
	now := nowOr(o.Now)
	if len(o.IDs) == 0 || len(o.IDs) == 1 && o.IDs[0] == "-" {
		return decodeStdin(ctx, f, p, o, now)
	}
	for _, a := range o.IDs {
		if a == "-" {
			return errs.Usage("id decode: - (read stdin) cannot be mixed with IDs on the command line").
				WithHint("give IDs as arguments, or pipe them all to 'dsctl id decode --layout NAME -'")
		}
	}
	return decodeArgs(f, p, o, now)
}

// argItem is one argument: a snowflake ID, a decoded UUID, or a decoded ULID or KSUID.
type argItem struct {
	id     uint64
	uuid   *uuidinfo.Info
	sortID *sortid.Info
}

func decodeArgs(f *cmdutil.Factory, p *output.Printer, o *DecodeOptions, now time.Time) error {
	items := make([]argItem, 0, len(o.IDs))
	nUUID := 0
	forced := sortid.ParseKind(o.Layout)
	for _, a := range o.IDs {
		if kind := sortid.Detect(a); forced != "" || kind != "" {
			info, err := sortid.Decode(a, forced, now)
			if err != nil {
				return err
			}
			items = append(items, argItem{sortID: &info})
			continue
		}
		if uuidinfo.LooksLikeUUID(a) {
			info, err := uuidinfo.Decode(a, now)
			if err != nil {
				return err
			}
			items = append(items, argItem{uuid: &info})
			nUUID++
			continue
		}
		id, err := snowflake.ParseID(a)
		if err != nil {
			return err
		}
		items = append(items, argItem{id: id})
	}
	var layout *snowflake.Layout
	if forced != "" {
		if strings.TrimSpace(o.Epoch) != "" {
			return errs.Usage("id decode: --epoch does not apply to --layout %s (its epoch is fixed)", forced)
		}
	} else if name := strings.TrimSpace(o.Layout); name != "" && !strings.EqualFold(name, autoLayout) {
		l, err := snowflake.Resolve(name, o.Epoch)
		if err != nil {
			return err
		}
		layout = l
	} else if strings.TrimSpace(o.Epoch) != "" {
		return errs.Usage("id decode: --epoch needs a --layout").
			WithHint("auto ranks the presets with their own epochs; give --layout NAME --epoch ...")
	}
	var d *snowflake.Decoder
	if layout != nil {
		d = snowflake.NewDecoder(layout, now)
	}

	var sf []sfRecord
	var autos []autoRecord
	var uuids []uuidRecord
	var sortIDs []sortIDRecord
	records := make([]any, 0, len(items))
	for _, it := range items {
		switch {
		case it.sortID != nil:
			r := sortIDRecord{*it.sortID}
			sortIDs = append(sortIDs, r)
			records = append(records, r)
		case it.uuid != nil:
			r := uuidRecord{*it.uuid}
			uuids = append(uuids, r)
			records = append(records, r)
		case d != nil:
			r := sfRecord{d: d, v: d.Decode(it.id)}
			sf = append(sf, r)
			records = append(records, r)
		default:
			r := newAutoRecord(it.id, now)
			autos = append(autos, r)
			records = append(records, r)
		}
	}

	switch p.Format {
	case output.JSON, output.YAML:
		return p.Print(records)
	case output.JSONL:
		for _, r := range records {
			if err := p.Print(r); err != nil {
				return err
			}
		}
		return nil
	case output.CSV:
		return decodeArgsCSV(p.Out, d, sf, autos, uuids, sortIDs)
	default:
		var secs []section
		if len(sf) > 0 {
			secs = append(secs, sfTable(d, sf))
		}
		for _, a := range autos {
			secs = append(secs, a.section())
		}
		if len(uuids) > 0 {
			secs = append(secs, uuidTable(uuids))
		}
		if len(sortIDs) > 0 {
			secs = append(secs, sortIDTable(sortIDs))
		}
		return renderSections(p.Out, p.Color, secs)
	}
}

func decodeArgsCSV(w io.Writer, d *snowflake.Decoder, sf []sfRecord, autos []autoRecord, uuids []uuidRecord, sortIDs []sortIDRecord) error {
	kinds := 0
	for _, n := range []int{len(sf), len(autos), len(uuids), len(sortIDs)} {
		if n > 0 {
			kinds++
		}
	}
	if kinds > 1 {
		return errs.Usage("id decode: -o csv holds one kind of record, and these arguments mix kinds of ID (snowflake, UUID, ULID/KSUID)").
			WithHint("decode them in separate runs, or use -o json or -o jsonl")
	}
	switch {
	case len(sortIDs) > 0:
		return sortIDTable(sortIDs).t.WriteCSV(w)
	case len(uuids) > 0:
		return uuidTable(uuids).t.WriteCSV(w)
	case len(autos) > 0:
		return autoCSV(w, autos)
	}
	buf := d.AppendCSVHeader(nil)
	for i := range sf {
		buf = d.AppendCSV(buf, &sf[i].v)
	}
	_, err := w.Write(buf)
	return err
}

// decodeStdin is bulk mode: stdin to stdout, streamed, bad lines to stderr.
func decodeStdin(ctx context.Context, f *cmdutil.Factory, p *output.Printer, o *DecodeOptions, now time.Time) error {
	readingStdinNote(f.IO, "decode")
	prog := newProgress(f.IO, "decode", "lines", 0, f.IO.StdoutTTY)
	defer prog.finish()
	in := &inputReader{ctx: ctx, r: f.IO.In, p: prog}
	first, rest, err := firstLine(in)
	if err != nil {
		return readError(ctx, err)
	}
	if first == nil {
		return noInput("decode")
	}
	out := newBufferedOut(f.IO)
	bad := &badLines{ios: f.IO, prog: prog}
	var st snowflake.StreamStats
	if kind := sortid.ParseKind(o.Layout); kind != "" || sortid.Detect(string(first)) != "" {
		st, err = decodeSortIDStream(rest, out, p, kind, now, bad)
	} else if uuidinfo.LooksLikeUUID(string(first)) {
		if strings.TrimSpace(o.Layout) != "" && !strings.EqualFold(strings.TrimSpace(o.Layout), autoLayout) {
			if _, err := snowflake.Resolve(o.Layout, o.Epoch); err != nil {
				return err
			}
		}
		st, err = decodeUUIDStream(rest, out, p, now, bad)
	} else {
		layout, lerr := resolveLayout("decode", "decoding IDs from stdin", o.Layout, o.Epoch)
		if lerr != nil {
			return lerr
		}
		bad.other = uuidInSnowflakes
		st, err = decodeIDStream(rest, out, p, snowflake.NewDecoder(layout, now), bad)
	}
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = ferr
	}
	prog.finish()
	bad.finish()
	if err != nil {
		return readError(ctx, err)
	}
	return partial(bad.failed, st.Good+st.Failed)
}

// firstLine reads up to the first non-blank line and returns it (trimmed) with a reader
// that replays everything from the start, so line numbers stay right. It reads no
// further than that line, so a terminal or a live pipe answers at once. first is nil
// for an input with no non-blank line.
func firstLine(r io.Reader) (first []byte, rest io.Reader, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var head []byte
	for {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if t := bytes.TrimSpace(line); len(t) > 0 || errors.Is(err, bufio.ErrBufferFull) {
			return append([]byte{}, t...), io.MultiReader(bytes.NewReader(head), br), nil
		}
		if err == io.EOF {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

func readError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	return errs.New(errs.KindRuntime, "id: reading stdin: %v", err).Wrap(err)
}

// decodeIDStream writes one record per ID line. CSV and JSON lines go straight through
// the engine's allocation-free encoder; JSON is the same records framed as an array;
// YAML is one list written item by item; tables go through the printer's stream.
func decodeIDStream(r io.Reader, out *bufferedOut, p *output.Printer, d *snowflake.Decoder, bad *badLines) (snowflake.StreamStats, error) {
	switch p.Format {
	case output.CSV:
		return snowflake.DecodeStream(r, out, d, snowflake.CSV, bad.report)
	case output.JSONL:
		return snowflake.DecodeStream(r, out, d, snowflake.JSONL, bad.report)
	case output.JSON:
		arr := &jsonArray{w: out}
		var v snowflake.Decoded
		var scratch []byte
		st, err := snowflake.ReadIDsIdle(r, func(_ int, id uint64) error {
			d.DecodeInto(id, &v)
			scratch = d.AppendJSON(scratch[:0], &v)
			return arr.add(scratch[:len(scratch)-1])
		}, bad.report, out.Flush)
		if cerr := arr.close(); err == nil {
			err = cerr
		}
		return st, err
	case output.YAML:
		list := &yamlList{w: out}
		var v snowflake.Decoded
		st, err := snowflake.ReadIDsIdle(r, func(_ int, id uint64) error {
			d.DecodeInto(id, &v)
			return list.addSnowflake(d, &v)
		}, bad.report, out.Flush)
		if cerr := list.close(); err == nil {
			err = cerr
		}
		return st, err
	default:
		s := newSFTableStream(out, d, p.Color)
		var v snowflake.Decoded
		return snowflake.ReadIDsIdle(r, func(_ int, id uint64) error {
			d.DecodeInto(id, &v)
			return s.write(&v)
		}, bad.report, out.Flush)
	}
}

// decodeUUIDStream writes one record per UUID line.
func decodeUUIDStream(r io.Reader, out *bufferedOut, p *output.Printer, now time.Time, bad *badLines) (snowflake.StreamStats, error) {
	return decodeTextStream(r, out, p, uuidHeader, "UUIDs", func(text string) (uuidRecord, error) {
		info, err := uuidinfo.Decode(text, now)
		return uuidRecord{info}, err
	}, bad)
}

// decodeSortIDStream writes one record per ULID or KSUID line (kind "" detects each).
func decodeSortIDStream(r io.Reader, out *bufferedOut, p *output.Printer, kind string, now time.Time, bad *badLines) (snowflake.StreamStats, error) {
	return decodeTextStream(r, out, p, sortIDHeader, "ULIDs or KSUIDs", func(text string) (sortIDRecord, error) {
		info, err := sortid.Decode(text, kind, now)
		return sortIDRecord{info}, err
	}, bad)
}

// decodeTextStream writes one record per line of an ID in text form. It reuses the
// engine's line reader: such an ID is not a number, so each arrives as a "bad line" and
// is decoded here; a line that is a number is a snowflake ID in the wrong stream, which
// is reported.
func decodeTextStream[R textRecord](r io.Reader, out *bufferedOut, p *output.Printer, header []string, what string,
	decode func(string) (R, error), bad *badLines) (snowflake.StreamStats, error) {
	emit, closeOut := recordEmitter[R](out, p, header)
	var werr error
	st, err := snowflake.ReadIDsIdle(r, func(line int, id uint64) error {
		bad.report(line, nil, errs.Usage("%d is a snowflake ID in a stream of %s; decode IDs in a stream of their own", id, what))
		return nil
	}, func(line int, text []byte, lerr error) {
		if errors.Is(lerr, snowflake.ErrLongLine) {
			bad.report(line, text, lerr)
			return
		}
		rec, derr := decode(string(text))
		if derr != nil {
			bad.report(line, text, derr)
			return
		}
		if werr == nil {
			werr = emit(rec)
		}
	}, func() error {
		if werr != nil {
			return werr
		}
		return out.Flush()
	})
	if err == nil {
		err = werr
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	return st, err
}

// textRecord is a decoded ID of a text form (UUID, ULID, KSUID): a table row and a CSV record.
type textRecord interface {
	output.StreamRow
	csv() []string
}

// recordEmitter returns a function that writes one record in the printer's format, and
// one that ends the output.
func recordEmitter[R textRecord](out *bufferedOut, p *output.Printer, header []string) (emit func(R) error, end func() error) {
	switch p.Format {
	case output.JSON:
		arr := &jsonArray{w: out}
		return func(r R) error {
			b, err := marshalJSON(r)
			if err != nil {
				return err
			}
			return arr.add(b)
		}, arr.close
	case output.JSONL:
		return func(r R) error {
			b, err := marshalJSON(r)
			if err != nil {
				return err
			}
			out.Write(b)
			out.WriteByte('\n')
			return out.record()
		}, func() error { return nil }
	case output.CSV:
		cw := newCSV(out, header)
		return func(r R) error {
			// Through to out at once, so out.Flush on idle sends it.
			if err := cw.write(r.csv()); err != nil {
				return err
			}
			if err := cw.flush(); err != nil {
				return err
			}
			return out.record()
		}, cw.flush
	case output.YAML:
		list := &yamlList{w: out}
		return func(r R) error {
			b, err := marshalJSON(r)
			if err != nil {
				return err
			}
			return list.add(b)
		}, list.close
	default:
		s := printerOn(p, out).NewStream(header, nil)
		return func(r R) error {
			if err := s.Write(r); err != nil {
				return err
			}
			return out.record()
		}, s.Close
	}
}

// jsonArray writes records as a JSON array, one record per line, as they come.
type jsonArray struct {
	w *bufferedOut
	n int
}

func (a *jsonArray) add(rec []byte) error {
	sep := ",\n  "
	if a.n == 0 {
		sep = "[\n  "
	}
	a.n++
	a.w.WriteString(sep)
	a.w.Write(rec)
	return a.w.record()
}

func (a *jsonArray) close() error {
	if a.n == 0 {
		_, err := a.w.WriteString("[]\n")
		return err
	}
	_, err := a.w.WriteString("\n]\n")
	return err
}
