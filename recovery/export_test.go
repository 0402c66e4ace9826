package recovery

import "github.com/aws/aws-sdk-go-v2/service/cloudwatch"

// DesiredAlarm exposes the system alarm the Installer wants for id.
func DesiredAlarm(i *Installer, id string) *cloudwatch.PutMetricAlarmInput {
	return i.desired(id, metricSystem, "recover")
}
