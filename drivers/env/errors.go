package env

import "errors"

// Sentinel errors. Each is wrapped with the operation and the bus or address
// it concerns; test for them with errors.Is.
var (
	// ErrNoBus is returned when the I²C device node (/dev/i2c-N) does not
	// exist: I²C is not enabled on this board, or the bus number is wrong.
	// Probe reports it as Skipped.
	ErrNoBus = errors.New("i2c bus not found")
	// ErrPermission is returned when the I²C device node exists but this user
	// may not open it. Probe reports it as Failed.
	ErrPermission = errors.New("permission denied on i2c bus")
	// ErrNoChip is returned when nothing acknowledges at the configured
	// address. Probe reports it as Skipped.
	ErrNoChip = errors.New("no chip answered at the address")
	// ErrWrongChip is returned when the chip at the address is not a BME280
	// or BMP280 (its chip id register says otherwise). Probe reports it as
	// Skipped.
	ErrWrongChip = errors.New("chip at the address is not a BME280 or BMP280")
	// ErrInvalidOption is returned by New and NewWithBus when an option has a
	// value out of range or malformed (a missing option takes its default).
	ErrInvalidOption = errors.New("invalid option")
)
